"""Identity prior: the FR-ViT feature of an aligned face.

StableIdentity encodes the face with a ViT-B/16 fine-tuned for face recognition, loaded as a plain
``ViTModel`` and frozen. Input: the aligned 512x512 image cropped to :data:`FR_VIT_CROP_BOX`
(x0, y0, x1, y1 = 64, 70, 440, 446: a 376 px square around the inner face), resized to the ViT's
input size (224), scaled to [0, 1] and normalised with mean = std = 0.5 (i.e. to [-1, 1]).
Feature: the CLS token of the last hidden state (768-d for the real model).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from transformers import ViTModel

#: (x0, y0, x1, y1) of the FR-ViT crop in the 512x512 FFHQ-aligned image (PIL ``crop`` convention).
FR_VIT_CROP_BOX = (64, 70, 440, 446)
FR_VIT_MEAN = 0.5
FR_VIT_STD = 0.5


def fr_vit_pixels(images: np.ndarray | torch.Tensor, input_size: int = 224,
                  aligned_size: int = 512) -> torch.Tensor:
    """Crop, resize and normalise aligned faces for the FR-ViT.

    Args:
        images: uint8 RGB (H, W, 3) or (B, H, W, 3) with H = W = ``aligned_size``, as numpy or torch.
        input_size: the ViT's image size.
        aligned_size: side of the aligned crop the box refers to (the box scales with it).
    Returns:
        float32 (B, 3, input_size, input_size) in [-1, 1] on the input's device (cpu for numpy).
    """
    x = torch.as_tensor(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.shape[-1] != 3 or x.shape[1] != x.shape[2]:
        raise ValueError(f"expected aligned RGB faces (B, S, S, 3), got {tuple(x.shape)}")
    s = x.shape[1] / aligned_size
    x0, y0, x1, y1 = (round(v * s) for v in FR_VIT_CROP_BOX)
    x = x[:, y0:y1, x0:x1].permute(0, 3, 1, 2).to(torch.float32) / 255.0
    x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False,
                      antialias=True)
    return (x - FR_VIT_MEAN) / FR_VIT_STD


@torch.no_grad()
def identity_features(fr_vit: ViTModel, images: np.ndarray | torch.Tensor, *,
                      with_mirror: bool = False) -> torch.Tensor:
    """FR-ViT CLS features of aligned faces.

    Args:
        fr_vit: the frozen face-recognition ViT (``components.fr_vit``).
        images: uint8 RGB (512, 512, 3) or (B, 512, 512, 3) aligned faces.
        with_mirror: also encode the mirror image of each crop (the crop box is cut first and then
            flipped, as the official code flips its ViT input), appended after the B originals.
    Returns:
        float32 (B, hidden), or (2B, hidden) with ``with_mirror``, on the ViT's device (hidden 768
        for the real model).
    """
    param = next(fr_vit.parameters())
    pixels = fr_vit_pixels(images, input_size=fr_vit.config.image_size)
    if with_mirror:
        pixels = torch.cat([pixels, pixels.flip(-1)])
    pixels = pixels.to(device=param.device, dtype=param.dtype)
    out = fr_vit(pixel_values=pixels)
    return out.last_hidden_state[:, 0].to(torch.float32)


__all__ = ["FR_VIT_CROP_BOX", "fr_vit_pixels", "identity_features"]
