"""Training augmentations of the aligned face; the masks follow every geometric change.

Per sample, in this order:

1. colour jitter on the image only: brightness, contrast and saturation factors in [0.8, 1.2] and
   a hue shift in [-0.01, 0.01] (fraction of the hue circle), applied in a random order like
   torchvision's ``ColorJitter`` (before any geometry, so the black canvas of step 4 stays black);
2. horizontal flip with p = 0.5 (the caller then uses the FR-ViT feature of the flipped face);
3. random crop to 3/4 of each side at a random place, resized back to full size (p = 0.5);
4. random downscale to s in [0.5, 1.0] of each side, pasted at a random place on a black canvas
   (p = 0.5).

Steps 2-4 are applied to the image and the masks stacked together, so they always line up. The
probabilities of steps 3 and 4 are not given by the paper; 0.5 keeps the unmodified framing in a
quarter of the samples. All randomness comes from one ``torch.Generator`` (deterministic per seed).
"""

from __future__ import annotations

from dataclasses import dataclass

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
    crop_p: float = 0.5
    crop_fraction: float = 0.75
    downscale_p: float = 0.5
    downscale_range: tuple[float, float] = (0.5, 1.0)


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
    return p > 0 and float(torch.rand((), generator=generator)) < p


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


def random_crop_resize(stack: torch.Tensor, generator: torch.Generator, fraction: float) -> torch.Tensor:
    """Crop a random ``fraction`` x ``fraction`` window of (C, H, W) and resize it back to (H, W)."""
    _, h, w = stack.shape
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    top, left = _randint(generator, h - ch), _randint(generator, w - cw)
    window = stack[:, top:top + ch, left:left + cw].unsqueeze(0)
    return F.interpolate(window, size=(h, w), mode="bilinear", align_corners=False)[0]


def random_downscale_paste(stack: torch.Tensor, generator: torch.Generator,
                           scale_range: tuple[float, float]) -> torch.Tensor:
    """Shrink (C, H, W) by a random factor and paste it at a random place on a zero canvas."""
    _, h, w = stack.shape
    scale = _uniform(generator, *scale_range)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = F.interpolate(stack.unsqueeze(0), size=(nh, nw), mode="bilinear", align_corners=False,
                          antialias=True)[0]
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
        stack = random_crop_resize(stack, generator, settings.crop_fraction)
    if _chance(generator, settings.downscale_p):
        stack = random_downscale_paste(stack, generator, settings.downscale_range)
    return AugmentedSample(image=stack[:3].clamp(0.0, 1.0), masks=stack[3:].clamp(0.0, 1.0), flipped=flipped)


def masks_to_latent(masks: torch.Tensor, size: tuple[int, int], threshold: float = 0.5) -> torch.Tensor:
    """Shrink masks to the latent grid and binarise: area average, then ``> threshold``.

    Args:
        masks: (..., H, W) float masks in [0, 1].
        size: latent (h, w), e.g. (resolution // 8,) * 2.
    Returns:
        float32 masks (..., h, w) of 0 and 1.
    """
    lead = masks.shape[:-2]
    flat = masks.reshape(-1, 1, *masks.shape[-2:]).float()
    small = F.interpolate(flat, size=size, mode="area") if flat.shape[-2:] != tuple(size) else flat
    return (small > threshold).float().reshape(*lead, *size)


__all__ = ["NO_AUGMENT", "AugmentSettings", "AugmentedSample", "augment", "color_jitter", "masks_to_latent",
           "random_crop_resize", "random_downscale_paste"]
