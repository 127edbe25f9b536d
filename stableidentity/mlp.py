"""The two trainable MLPs of StableIdentity: FR-ViT feature -> two normalised word embeddings.

One :class:`IdentityMLP` per SDXL text encoder (768 -> 2 x 768 for CLIP ViT-L, 768 -> 2 x 1280 for
OpenCLIP bigG). Layout for ``depth`` linear layers, as the official code's ``StyleVectorizer``
(``models/id_embedding/meta_net.py`` of ``qinghew/StableIdentity``)::

    EqualLinear(in -> h) -> LeakyReLU(0.2)
    -> [x + (LayerNorm -> EqualLinear(h -> h) -> LeakyReLU(0.2))(x)] x (depth - 2)   (residual)
    -> LayerNorm -> EqualLinear(h -> 2d) -> LayerNorm(2d, affine)

``h`` is the hidden width: ``hidden_factor * d`` (official: 2, i.e. the output width 2d). The
final LayerNorm normalises the whole 2*d output; it is the normalisation half of AdaIN (the
celebrity statistics of :mod:`stableidentity.adain` are the scale and shift) and, as in the
official code, it has learnable affine parameters (initialised to 1 and 0). ``final_affine=False``
drops them (a departure kept as a switch: ``train.mlp_final_affine``).

``EqualLinear`` weights are stored as N(0, ``init_std``) and multiplied by ``lr_mul`` in the
forward pass, so the weights in use start with standard deviation ``init_std * lr_mul``
(official: 0.02 * 0.1 = 0.002; the official ``train.py`` overwrites every linear weight with
N(0, 0.02) and every bias with 0 after building the MLP).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Std of the stored ``EqualLinear`` weights (official ``weights_init_normal``).
INIT_STD = 0.02
#: Equalised learning-rate multiplier (official ``lr_mul``).
LR_MUL = 0.1
#: Hidden width as a multiple of the token width ``d`` (official: the output width, 2d).
HIDDEN_FACTOR = 2


class EqualLinear(nn.Module):
    """Linear layer with StyleGAN's equalised learning rate.

    The stored weight is ``randn * init_std`` and is multiplied by ``lr_mul`` in the forward pass,
    so the effective weight starts as N(0, (init_std * lr_mul)^2); the bias is stored as 0 and
    also scaled by ``lr_mul``. With Adam (whose step size does not depend on the gradient scale) a
    step of ``lr`` on the stored values moves the effective weights by ``lr * lr_mul``.
    """

    def __init__(self, in_dim: int, out_dim: int, *, lr_mul: float = LR_MUL, init_std: float = INIT_STD,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if lr_mul <= 0 or init_std <= 0:
            raise ValueError(f"lr_mul and init_std must be positive, got {lr_mul}, {init_std}")
        self.lr_mul = float(lr_mul)
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim, generator=generator) * init_std)
        self.bias = nn.Parameter(torch.zeros(out_dim))

    @property
    def effective_weight(self) -> torch.Tensor:
        """The weight actually applied: (out_dim, in_dim)."""
        return self.weight * self.lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.lr_mul, self.bias * self.lr_mul)

    def extra_repr(self) -> str:
        return f"in_dim={self.weight.shape[1]}, out_dim={self.weight.shape[0]}, lr_mul={self.lr_mul}"


class Residual(nn.Module):
    """``x + block(x)``: the middle layers of a deeper MLP (official ``Residual``)."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class IdentityMLP(nn.Module):
    """FR-ViT feature (B, in_dim) -> normalised token embeddings (B, num_tokens, token_dim).

    Args:
        in_dim: FR-ViT hidden size (768; 32 in the tiny preset).
        token_dim: the text encoder's hidden size ``d``.
        num_tokens: signal words per identity (2).
        depth: number of linear layers (``config.train.mlp_depth``; >= 1).
        hidden_factor: hidden width in multiples of ``d`` (``config.train.mlp_hidden_factor``; 2).
        final_affine: learnable affine of the final LayerNorm (``config.train.mlp_final_affine``).
        lr_mul: equalised learning-rate multiplier (``config.train.lr_multiplier``).
        init_std: std of the stored weights (``config.train.mlp_init_std``); effective std
            ``init_std * lr_mul``.
        generator: seeds the initial weights.
    """

    def __init__(self, in_dim: int, token_dim: int, *, num_tokens: int = 2, depth: int = 2,
                 hidden_factor: int = HIDDEN_FACTOR, final_affine: bool = True, lr_mul: float = LR_MUL,
                 init_std: float = INIT_STD, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if depth < 1 or hidden_factor < 1:
            raise ValueError(f"depth and hidden_factor must be at least 1, got {depth}, {hidden_factor}")
        self.num_tokens = num_tokens
        self.token_dim = token_dim
        out_dim = num_tokens * token_dim
        hidden = hidden_factor * token_dim

        def linear(i: int, o: int) -> EqualLinear:
            return EqualLinear(i, o, lr_mul=lr_mul, init_std=init_std, generator=generator)

        layers: list[nn.Module] = []
        if depth == 1:
            layers.append(linear(in_dim, out_dim))
        else:
            layers += [linear(in_dim, hidden), nn.LeakyReLU(0.2)]
            for _ in range(depth - 2):
                layers.append(Residual(nn.Sequential(nn.LayerNorm(hidden), linear(hidden, hidden),
                                                     nn.LeakyReLU(0.2))))
            layers += [nn.LayerNorm(hidden), linear(hidden, out_dim)]
        self.net = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(out_dim, elementwise_affine=final_affine)

    def equal_linears(self) -> list[EqualLinear]:
        """Every :class:`EqualLinear` of the MLP, input side first."""
        return [m for m in self.modules() if isinstance(m, EqualLinear)]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) -> (B, num_tokens, token_dim); at initialisation each row of 2*d values has
        mean 0 and std 1 (the final LayerNorm's affine starts as the identity)."""
        out = self.norm(self.net(features))
        return out.view(features.shape[0], self.num_tokens, self.token_dim)


__all__ = ["HIDDEN_FACTOR", "INIT_STD", "LR_MUL", "EqualLinear", "IdentityMLP", "Residual"]
