"""Training augmentations of the aligned face; the masks follow every geometric change.

Per sample, in this order:

1. colour jitter on the image only: brightness, contrast and saturation factors in [0.8, 1.2] and
   a hue shift in [-0.01, 0.01] (fraction of the hue circle), applied in a random order like
   torchvision's ``ColorJitter`` (before any geometry, so the black canvas of step 4 stays black);
2. horizontal flip with p = 0.5 (the caller then uses the FR-ViT feature of the flipped face);
3. random crop to 3/4 of each side at a random place, resized back to full size (every sample);
4. random downscale: height ``int(H * s)`` with s in [0.5, 1.0], width ``int(height * a)`` with the
   aspect jitter a in [0.9, 1.1] (at most W), pasted at a random place on a black canvas (every
   sample).

The paper gives no probabilities for steps 3 and 4; the official code (``datasets_face/face_id.py``
of ``qinghew/StableIdentity``) applies both to every sample, with bicubic resampling
(``align_corners=True``), and so do the defaults here (``crop_p``, ``downscale_p``, ``aspect_range``
and ``resample`` keep the older choices reachable: ``train.augment_crop_p``,
``train.augment_paste_p``, ``train.augment_paste_aspect``, ``train.resample``). Steps 2-4 are
applied to the image and the masks stacked together, so they always line up. All randomness comes
from one ``torch.Generator`` (deterministic per seed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF


@dataclass(frozen=True)
class AugmentSettings:
    """Augmentation ranges and probabilities (defaults: StableIdentity's)."""

    brightness: tuple[float, float] = (0.8, 1.2)
    contrast: tuple[float, float] = (0.8, 1.2)
    saturation: tuple[float, float] = (0.8, 1.2)
    hue: float = 0.01
    flip_p: float = 0.5
    crop_p: float = 1.0
    crop_fraction: float = 0.75
    downscale_p: float = 1.0
    downscale_range: tuple[float, float] = (0.5, 1.0)
    aspect_range: tuple[float, float] = (0.9, 1.1)
    resample: Literal["bicubic", "bilinear"] = "bicubic"

    @classmethod
    def from_config(cls, train: Any) -> "AugmentSettings":
        """Settings from a ``configs.TrainConfig`` (its ``augment_*`` and ``resample`` keys)."""
        jitter = float(train.augment_paste_aspect)
        return cls(crop_p=float(train.augment_crop_p), downscale_p=float(train.augment_paste_p),
                   aspect_range=(1.0 - jitter, 1.0 + jitter), resample=train.resample)


#: No augmentation at all (evaluation, tests).
NO_AUGMENT = AugmentSettings(brightness=(1.0, 1.0), contrast=(1.0, 1.0), saturation=(1.0, 1.0), hue=0.0,
                             flip_p=0.0, crop_p=0.0, downscale_p=0.0)


@dataclass
class AugmentedSample:
    """One augmented training sample.

    Attributes:
        image: float32 (3, H, W) RGB in [0, 1].
        masks: float32 (2, H, W) face and hair masks in [0, 1] (soft where resampled).
        flipped: whether the sample was mirrored.
    """

    image: torch.Tensor
    masks: torch.Tensor
    flipped: bool


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _chance(generator: torch.Generator, p: float) -> bool:
    """True with probability ``p``; p = 0 and p = 1 draw nothing (no random number consumed)."""
    if p <= 0 or p >= 1:
        return p >= 1
    return float(torch.rand((), generator=generator)) < p


def _randint(generator: torch.Generator, high_inclusive: int) -> int:
    return int(torch.randint(0, high_inclusive + 1, (), generator=generator)) if high_inclusive > 0 else 0


def color_jitter(image: torch.Tensor, generator: torch.Generator, settings: AugmentSettings) -> torch.Tensor:
    """Brightness, contrast, saturation and hue jitter in a random order; (3, H, W) in [0, 1]."""
    factors = [_uniform(generator, *settings.brightness), _uniform(generator, *settings.contrast),
               _uniform(generator, *settings.saturation), _uniform(generator, -settings.hue, settings.hue)]
    ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    neutral = (1.0, 1.0, 1.0, 0.0)
    for index in torch.randperm(4, generator=generator).tolist():
        if factors[index] != neutral[index]:
            image = ops[index](image, factors[index])
    return image.clamp(0.0, 1.0)


def _resize(stack: torch.Tensor, size: tuple[int, int], resample: str) -> torch.Tensor:
    """Resize (C, H, W) to ``size``: ``bicubic`` as the official code (``align_corners=True``, no
    antialiasing) or ``bilinear`` with antialiasing."""
    if resample == "bicubic":
        return F.interpolate(stack.unsqueeze(0), size=size, mode="bicubic", align_corners=True)[0]
    if resample == "bilinear":
        return F.interpolate(stack.unsqueeze(0), size=size, mode="bilinear", align_corners=False,
                             antialias=True)[0]
    raise ValueError(f"resample must be bicubic or bilinear, got {resample!r}")


def random_crop_resize(stack: torch.Tensor, generator: torch.Generator, fraction: float,
                       resample: str = "bicubic") -> torch.Tensor:
    """Crop a random ``fraction`` x ``fraction`` window of (C, H, W) and resize it back to (H, W)."""
    _, h, w = stack.shape
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    top, left = _randint(generator, h - ch), _randint(generator, w - cw)
    return _resize(stack[:, top:top + ch, left:left + cw], (h, w), resample)


def random_downscale_paste(stack: torch.Tensor, generator: torch.Generator,
                           scale_range: tuple[float, float],
                           aspect_range: tuple[float, float] = (1.0, 1.0),
                           resample: str = "bicubic") -> torch.Tensor:
    """Shrink (C, H, W) to height ``int(H * s)`` and width ``int(height * a)`` (at most W), with s
    and a drawn from ``scale_range`` and ``aspect_range``, and paste it at a random place on a zero
    canvas."""
    _, h, w = stack.shape
    nh = min(h, max(1, int(h * _uniform(generator, *scale_range))))
    nw = min(w, max(1, int(nh * _uniform(generator, *aspect_range))))
    small = _resize(stack, (nh, nw), resample)
    top, left = _randint(generator, h - nh), _randint(generator, w - nw)
    canvas = torch.zeros_like(stack)
    canvas[:, top:top + nh, left:left + nw] = small
    return canvas


def augment(image: torch.Tensor, masks: torch.Tensor, generator: torch.Generator,
            settings: AugmentSettings = AugmentSettings()) -> AugmentedSample:
    """Augment one sample.

    Args:
        image: float (3, H, W) RGB in [0, 1].
        masks: float (M, H, W) masks in [0, 1] (face, hair).
        generator: CPU generator that draws every random choice.
        settings: ranges and probabilities.
    """
    if image.shape[-2:] != masks.shape[-2:]:
        raise ValueError(f"image {tuple(image.shape)} and masks {tuple(masks.shape)} differ in size")
    image = color_jitter(image.float(), generator, settings)
    stack = torch.cat([image, masks.to(image)], dim=0)
    flipped = _chance(generator, settings.flip_p)
    if flipped:
        stack = stack.flip(-1)
    if _chance(generator, settings.crop_p):
        stack = random_crop_resize(stack, generator, settings.crop_fraction, settings.resample)
    if _chance(generator, settings.downscale_p):
        stack = random_downscale_paste(stack, generator, settings.downscale_range, settings.aspect_range,
                                       settings.resample)
    return AugmentedSample(image=stack[:3].clamp(0.0, 1.0), masks=stack[3:].clamp(0.0, 1.0), flipped=flipped)


def masks_to_latent(masks: torch.Tensor, size: tuple[int, int], threshold: float = 0.5,
                    resample: str = "bicubic") -> torch.Tensor:
    """Shrink masks to the latent grid and binarise.

    ``bicubic`` (official): bicubic with ``align_corners=True``, then ``>= threshold``;
    ``bilinear`` (the ``train.resample`` alternative): area average, then ``> threshold``.

    Args:
        masks: (..., H, W) float masks in [0, 1].
        size: latent (h, w), e.g. (resolution // 8,) * 2.
    Returns:
        float32 masks (..., h, w) of 0 and 1.
    """
    lead = masks.shape[:-2]
    flat = masks.reshape(-1, 1, *masks.shape[-2:]).float()
    if flat.shape[-2:] == tuple(size):
        small = flat
    elif resample == "bicubic":
        small = F.interpolate(flat, size=size, mode="bicubic", align_corners=True)
    elif resample == "bilinear":
        small = F.interpolate(flat, size=size, mode="area")
    else:
        raise ValueError(f"resample must be bicubic or bilinear, got {resample!r}")
    binary = small >= threshold if resample == "bicubic" else small > threshold
    return binary.float().reshape(*lead, *size)


__all__ = ["NO_AUGMENT", "AugmentSettings", "AugmentedSample", "augment", "color_jitter", "masks_to_latent",
           "random_crop_resize", "random_downscale_paste"]
