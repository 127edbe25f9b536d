"""A tiny-preset cast and generator helpers shared by the panel-pipeline tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from identities.library import Identity


def person(name: str, seed: int, scale: float = 0.05) -> Identity:
    """A random identity for the tiny preset: clip_l (2, 32), clip_g (2, 64), ~N(0, scale^2)."""
    g = torch.Generator().manual_seed(seed)
    return Identity(name=name, pronouns="", clip_l=torch.randn(2, 32, generator=g) * scale,
                    clip_g=torch.randn(2, 64, generator=g) * scale, metadata={}, folder=Path("."))


CAST = {n: person(n, s) for n, s in (("Ada Lovelace", 1), ("Alan Turing", 2), ("Grace Hopper", 3))}


def pixels(image: Image.Image) -> np.ndarray:
    """The image as an int16 array (H, W, 3), so differences do not wrap."""
    return np.asarray(image, dtype=np.int16)


def with_generation(components, **changes):
    """``components`` with ``config.generation`` fields replaced by ``changes``."""
    cfg = components.config
    return dataclasses.replace(components, config=cfg.replace(
        generation=dataclasses.replace(cfg.generation, **changes)))
