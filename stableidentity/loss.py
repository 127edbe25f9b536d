"""StableIdentity's two-phase masked diffusion loss.

With ``t ~ U{0..T-1}`` split at ``alpha * T``:

* ``t > alpha*T`` (early, noisy steps) -- noise loss ``MSE(M * eps_hat, M * eps)``;
* ``t <= alpha*T`` (late steps) -- reconstruction loss ``MSE(M * z0_hat, M * z0)`` with
  ``z0_hat = (z_t - sqrt(1 - abar_t) * eps_hat) / sqrt(abar_t)``, compared in *unscaled* latent
  space: both sides divided by ``z0_divisor`` (:func:`z0_divisor`: 0.18215, the SD2.1 VAE factor
  the official code divides by, by default; or this model's VAE factor, 0.13025 on SDXL).

``total = L(face mask) + hair_weight * L(hair mask)``. Each MSE is a mean over all latent elements
(batch x channels x height x width), not normalised by the mask area. ``z0_hat`` assumes an
epsilon-prediction model (SDXL base is one).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LossTerms:
    """The loss and its parts (tensors; ``total`` carries the graph).

    Attributes:
        total: scalar, ``face + hair_weight * hair``.
        face: scalar, the face-mask term.
        hair: scalar, the hair-mask term (unweighted).
        reconstruction: bool (B,), True where the sample used the reconstruction branch.
    """

    total: torch.Tensor
    face: torch.Tensor
    hair: torch.Tensor
    reconstruction: torch.Tensor


def uses_reconstruction(timesteps: torch.Tensor, alpha: float, num_train_timesteps: int) -> torch.Tensor:
    """bool (B,): True where ``t <= alpha * T`` (reconstruction branch), False where noise branch."""
    return timesteps.to(torch.float64) <= alpha * num_train_timesteps


def predicted_x0(z_t: torch.Tensor, eps_hat: torch.Tensor, timesteps: torch.Tensor,
                 alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """``(z_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)`` for an epsilon-prediction model.

    Args:
        z_t, eps_hat: (B, C, h, w) noisy latents and predicted noise.
        timesteps: int (B,).
        alphas_cumprod: (T,) the training scheduler's cumulative alphas.
    """
    abar = alphas_cumprod.to(device=z_t.device, dtype=torch.float32)[timesteps.to(z_t.device)]
    abar = abar.view(-1, *([1] * (z_t.ndim - 1)))
    return (z_t.float() - (1.0 - abar).sqrt() * eps_hat.float()) / abar.sqrt()


def add_noise(z0: torch.Tensor, eps: torch.Tensor, timesteps: torch.Tensor,
              alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """``z_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps`` (DDPM forward process), float32.

    The same as ``DDPMScheduler.add_noise``, with ``alphas_cumprod`` already on the latents' device
    (the scheduler copies its table to the device on every call).
    """
    abar = alphas_cumprod.to(device=z0.device, dtype=torch.float32)[timesteps.to(z0.device)]
    abar = abar.view(-1, *([1] * (z0.ndim - 1)))
    return abar.sqrt() * z0.float() + (1.0 - abar).sqrt() * eps.float()


#: The SD 2.1 VAE's scaling factor: the official code's z0 branch divides the latents by it.
OFFICIAL_Z0_DIVISOR = 0.18215


def z0_divisor(weighting: str, vae_scaling_factor: float) -> float:
    """What the z0 branch divides latents by, for ``train.z0_weighting``.

    ``official``: 0.18215, as the official SD 2.1 code does. Its latents are scaled by 0.18215, so
    it compares unscaled latents; on SDXL (scaled by 0.13025) dividing by 0.18215 keeps the
    official *relative* weight of the reconstruction branch against the noise branch (dividing by
    0.13025 instead weights it (0.18215 / 0.13025)^2 = 1.96x more). ``vae``: this model's own
    ``vae_scaling_factor`` (unscaled SDXL latents; the earlier behaviour).
    """
    if weighting == "official":
        return OFFICIAL_Z0_DIVISOR
    if weighting == "vae":
        return float(vae_scaling_factor)
    raise ValueError(f"z0 weighting must be 'official' or 'vae', got {weighting!r}")


def _masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-sample ``mean((M * p - M * t)^2)`` over C, h, w -> (B,)."""
    diff = mask * prediction - mask * target
    return diff.pow(2).flatten(1).mean(dim=1)


def two_phase_loss(*, eps_hat: torch.Tensor, eps: torch.Tensor, z_t: torch.Tensor, z0: torch.Tensor,
                   timesteps: torch.Tensor, face_mask: torch.Tensor, hair_mask: torch.Tensor,
                   alphas_cumprod: torch.Tensor, alpha: float, num_train_timesteps: int,
                   hair_weight: float, vae_scaling_factor: float) -> LossTerms:
    """The two-phase masked loss of one batch.

    Args:
        eps_hat: (B, C, h, w) UNet prediction (any float dtype; computed in float32).
        eps: (B, C, h, w) the noise that was added.
        z_t: (B, C, h, w) noisy latents fed to the UNet.
        z0: (B, C, h, w) clean latents, *scaled* (``vae latents * scaling_factor``), as noised.
        timesteps: int (B,).
        face_mask, hair_mask: (B, 1, h, w) 0/1 masks on the latent grid.
        alphas_cumprod: (T,) cumulative alphas of the training scheduler.
        alpha: phase split (0.6 in the paper).
        num_train_timesteps: T (1000).
        hair_weight: weight of the hair term (0.1).
        vae_scaling_factor: what the z0 branch divides the latents by (:func:`z0_divisor`:
            0.18215 with ``train.z0_weighting: official``, the VAE's 0.13025 on SDXL with ``vae``).
    """
    eps_hat = eps_hat.float()
    eps = eps.float()
    face_mask = face_mask.float()
    hair_mask = hair_mask.float()
    rec = uses_reconstruction(timesteps, alpha, num_train_timesteps).to(eps.device)
    # both branches are computed (a few element-wise ops) and selected per sample: branching in
    # Python would read ``rec`` back from the GPU and stall the queue before the backward pass
    x0_hat = predicted_x0(z_t, eps_hat, timesteps, alphas_cumprod) / vae_scaling_factor
    x0 = z0.float() / vae_scaling_factor  # unscaled latent space
    terms = []
    for mask in (face_mask, hair_mask):
        per_sample = torch.where(rec, _masked_mse(x0_hat, x0, mask), _masked_mse(eps_hat, eps, mask))
        terms.append(per_sample.mean())
    face, hair = terms
    return LossTerms(total=face + hair_weight * hair, face=face, hair=hair, reconstruction=rec)


__all__ = ["LossTerms", "add_noise", "predicted_x0", "two_phase_loss", "uses_reconstruction",
           "OFFICIAL_Z0_DIVISOR", "z0_divisor"]
