"""The two trainable MLPs of StableIdentity: FR-ViT feature -> two normalised word embeddings.

One :class:`IdentityMLP` per SDXL text encoder (768 -> 2 x 768 for CLIP ViT-L, 768 -> 2 x 1280 for
OpenCLIP bigG). Layout for ``depth`` linear layers::

    EqualLinear -> LeakyReLU(0.2) -> [LayerNorm -> EqualLinear -> LeakyReLU(0.2)] x (depth - 2)
    -> LayerNorm -> EqualLinear -> LayerNorm(2 * d, no affine)

The final LayerNorm normalises the whole 2*d output to zero mean and unit variance and has **no**
affine parameters: it is the normalisation half of AdaIN, and the celebrity statistics
(:mod:`stableidentity.adain`) supply the scale and shift. A learnable affine there would duplicate
them and let the output drift away from the name-embedding range.

Hidden layers are ``d`` wide (the encoder's token width) unless ``hidden_dim`` says otherwise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class EqualLinear(nn.Module):
    """Linear layer with StyleGAN's equalised learning rate.

    The stored weight is ``randn * init_std / lr_mul`` and is multiplied by ``lr_mul`` in the
    forward pass, so the effective weight starts as N(0, init_std^2); the bias is stored as 0 and
    also scaled by ``lr_mul``. With Adam (whose step size does not depend on the gradient scale) a
    step of ``lr`` on the stored values moves the effective weights by ``lr * lr_mul``: the layer
    learns ``lr_mul`` times slower than a plain ``nn.Linear``.
    """

    def __init__(self, in_dim: int, out_dim: int, *, lr_mul: float = 0.1, init_std: float = 0.02,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if lr_mul <= 0:
            raise ValueError(f"lr_mul must be positive, got {lr_mul}")
        self.lr_mul = float(lr_mul)
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim, generator=generator) * (init_std / lr_mul))
        self.bias = nn.Parameter(torch.zeros(out_dim))

    @property
    def effective_weight(self) -> torch.Tensor:
        """The weight actually applied: (out_dim, in_dim)."""
        return self.weight * self.lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.lr_mul, self.bias * self.lr_mul)

    def extra_repr(self) -> str:
        return f"in_dim={self.weight.shape[1]}, out_dim={self.weight.shape[0]}, lr_mul={self.lr_mul}"


class IdentityMLP(nn.Module):
    """FR-ViT feature (B, in_dim) -> normalised token embeddings (B, num_tokens, token_dim).

    Args:
        in_dim: FR-ViT hidden size (768; 32 in the tiny preset).
        token_dim: the text encoder's hidden size ``d``.
        num_tokens: signal words per identity (2).
        depth: number of linear layers (``config.train.mlp_depth``; >= 1).
        hidden_dim: width of the hidden layers (default ``token_dim``).
        lr_mul: equalised learning-rate multiplier (``config.train.lr_multiplier``).
        init_std: effective initial weight standard deviation (0.02).
        generator: seeds the initial weights.
    """

    def __init__(self, in_dim: int, token_dim: int, *, num_tokens: int = 2, depth: int = 2,
                 hidden_dim: int | None = None, lr_mul: float = 0.1, init_std: float = 0.02,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self.num_tokens = num_tokens
        self.token_dim = token_dim
        out_dim = num_tokens * token_dim
        hidden = hidden_dim or token_dim

        def linear(i: int, o: int) -> EqualLinear:
            return EqualLinear(i, o, lr_mul=lr_mul, init_std=init_std, generator=generator)

        layers: list[nn.Module] = []
        if depth == 1:
            layers.append(linear(in_dim, out_dim))
        else:
            layers += [linear(in_dim, hidden), nn.LeakyReLU(0.2)]
            for _ in range(depth - 2):
                layers += [nn.LayerNorm(hidden), linear(hidden, hidden), nn.LeakyReLU(0.2)]
            layers += [nn.LayerNorm(hidden), linear(hidden, out_dim)]
        self.net = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(out_dim, elementwise_affine=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) -> (B, num_tokens, token_dim); each row of 2*d values has mean 0, std 1."""
        out = self.norm(self.net(features))
        return out.view(features.shape[0], self.num_tokens, self.token_dim)


__all__ = ["EqualLinear", "IdentityMLP"]
