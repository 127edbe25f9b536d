"""The ``train`` section: the app's own training loop (StableIdentityTrainer.run) or a faithful
step written here, one variant each; the 500-step identity each implies."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench import common
from bench.sdxl_random.variants import (
    TRAIN_PROMPT,
    Variant,
    applied,
    compiled,
    rng_devices,
)
from stableidentity.mlp import IdentityMLP  # the app's MLP, official layout and init


class SignalEmbedding(nn.Module):
    """Token embedding whose two signal-word ids (``vocab``, ``vocab + 1``) read ``rows``.

    ``rows`` (batch, 2, d) is set before each text-encoder call; gradients flow into it only.
    """

    def __init__(self, base: nn.Embedding) -> None:
        super().__init__()
        self.base = base
        self.vocab = base.num_embeddings
        self.rows: torch.Tensor | None = None

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        emb = self.base(ids.clamp(max=self.vocab - 1))
        if self.rows is None:
            return emb
        out = emb
        for k in range(2):
            hit = (ids == self.vocab + k).unsqueeze(-1)
            out = torch.where(hit, self.rows[:, k:k + 1].to(emb.dtype), out)
        return out


@contextlib.contextmanager
def signal_embeddings(components: Any) -> Iterator[tuple[SignalEmbedding, SignalEmbedding]]:
    """Install :class:`SignalEmbedding` in both text encoders; restore the originals on exit."""
    installed = []
    try:
        for n in ("text_encoder", "text_encoder_2"):
            encoder = getattr(components, n)
            original = encoder.get_input_embeddings()
            encoder.set_input_embeddings(SignalEmbedding(original))
            installed.append((encoder, original))
        yield installed[0][0].get_input_embeddings(), installed[1][0].get_input_embeddings()
    finally:
        for encoder, original in installed:
            encoder.set_input_embeddings(original)


@dataclass
class TrainBatch:
    """Everything a training step reads that is prepared once per identity."""

    image: torch.Tensor        # (1, 3, R, R) augmented face in [-1, 1], model dtype
    face_mask: torch.Tensor    # (1, 1, R/8, R/8) float32 {0, 1}
    hair_mask: torch.Tensor    # (1, 1, R/8, R/8) float32 {0, 1}
    feature: torch.Tensor      # (1, 768) FR-ViT CLS feature, float32
    ids_1: torch.Tensor        # (1, 77) token ids, signal words at vocab, vocab + 1
    ids_2: torch.Tensor
    time_ids: torch.Tensor     # (1, 6) original size, crop top-left, target size
    mu: tuple[torch.Tensor, torch.Tensor]     # per encoder (2, d) name-embedding mean
    sigma: tuple[torch.Tensor, torch.Tensor]  # per encoder (2, d) name-embedding std


def _signal_ids(tokenizer: Any, vocab: int, device: torch.device) -> torch.Tensor:
    """Token ids of the training prompt with the two signal words at ids ``vocab``, ``vocab+1``."""
    ids = tokenizer(TRAIN_PROMPT.format("person person"), padding="max_length", max_length=77,
                    truncation=True, return_tensors="pt").input_ids
    person = tokenizer("person", add_special_tokens=False).input_ids[0]
    where = (ids[0] == person).nonzero().flatten()[:2]
    ids[0, where[0]], ids[0, where[1]] = vocab, vocab + 1
    return ids.to(device)


def make_train_batch(components: Any, resolution: int, seed: int) -> TrainBatch:
    """A random augmented face batch, masks, the FR-ViT feature (computed once, as the trainer
    does) and random name statistics, on the components' device."""
    device, dtype = components.device, components.dtype
    gen = torch.Generator("cpu").manual_seed(seed)
    image = torch.rand(1, 3, resolution, resolution, generator=gen) * 2 - 1
    lat = resolution // 8
    face = (torch.rand(1, 1, lat, lat, generator=gen) > 0.5).float()
    hair = (torch.rand(1, 1, lat, lat, generator=gen) > 0.7).float()
    vit_in = torch.rand(1, 3, 224, 224, generator=gen).to(device) * 2 - 1
    with torch.no_grad():
        feature = components.fr_vit(pixel_values=vit_in).last_hidden_state[:, 0].float()
    te1, te2 = components.text_encoder, components.text_encoder_2
    d1, d2 = te1.config.hidden_size, te2.config.hidden_size
    mu = tuple(torch.randn(2, d, generator=gen).mul(0.01).to(device) for d in (d1, d2))
    sigma = tuple(torch.rand(2, d, generator=gen).mul(0.02).add(0.005).to(device) for d in (d1, d2))
    time_ids = torch.tensor([[resolution, resolution, 0, 0, resolution, resolution]],
                            dtype=torch.float32, device=device)
    return TrainBatch(image=image.to(device, dtype), face_mask=face.to(device),
                      hair_mask=hair.to(device), feature=feature,
                      ids_1=_signal_ids(components.tokenizer, te1.config.vocab_size, device),
                      ids_2=_signal_ids(components.tokenizer_2, te2.config.vocab_size, device),
                      time_ids=time_ids, mu=mu, sigma=sigma)  # type: ignore[arg-type]


class FaithfulTrainStep:
    """One StableIdentity training step on loaded components (see the module docstring)."""

    def __init__(self, components: Any, batch: TrainBatch, unet_call: Callable[..., Any],
                 embeddings: tuple[SignalEmbedding, SignalEmbedding], seed: int,
                 lr: float = 5e-5, alpha: float = 0.6, hair_weight: float = 0.1,
                 grad_clip: float = 1.0) -> None:
        self.c, self.batch, self.unet_call, self.embeddings = components, batch, unet_call, embeddings
        self.alpha, self.hair_weight, self.grad_clip = alpha, hair_weight, grad_clip
        device = components.device
        feat = batch.feature.shape[-1]
        with torch.random.fork_rng(devices=rng_devices(device)):
            torch.manual_seed(seed)
            self.mlps = nn.ModuleList([
                IdentityMLP(feat, components.text_encoder.config.hidden_size),
                IdentityMLP(feat, components.text_encoder_2.config.hidden_size)]).to(device)
        self.opt = torch.optim.AdamW(self.mlps.parameters(), lr=lr, betas=(0.9, 0.999),
                                     weight_decay=1e-2, eps=1e-8)
        sched = components.train_scheduler
        self.num_t = sched.config.num_train_timesteps
        self.abar = sched.alphas_cumprod.to(device=device, dtype=torch.float32)
        self.scaling = components.vae.config.scaling_factor
        self.gen = torch.Generator(device).manual_seed(seed)

    def __call__(self) -> float:
        """Run one optimisation step; returns the loss (a host sync, as a progress bar does)."""
        c, b = self.c, self.batch
        device, dtype = c.device, c.unet.dtype
        with torch.no_grad():
            z0 = c.vae.encode(b.image.to(dtype)).latent_dist.sample(self.gen).float() * self.scaling
        noise = torch.randn(z0.shape, generator=self.gen, device=device)
        t = torch.randint(0, self.num_t, (1,), generator=self.gen, device=device)
        abar = self.abar[t].view(-1, 1, 1, 1)
        zt = abar.sqrt() * z0 + (1 - abar).sqrt() * noise
        vecs = [mu + sigma * mlp(b.feature) for mlp, mu, sigma in zip(self.mlps, b.mu, b.sigma)]
        self.embeddings[0].rows, self.embeddings[1].rows = vecs
        out1 = c.text_encoder(b.ids_1, output_hidden_states=True)
        out2 = c.text_encoder_2(b.ids_2, output_hidden_states=True)
        ehs = torch.cat([out1.hidden_states[-2], out2.hidden_states[-2]], dim=-1).to(dtype)
        cond = dict(text_embeds=out2.text_embeds.to(dtype), time_ids=b.time_ids.to(dtype))
        eps = self.unet_call(zt.to(dtype), t, ehs, added_cond_kwargs=cond).sample.float()
        late = bool(t.item() <= self.alpha * self.num_t)  # the branch needs t on the host anyway
        if late:
            pred, target = (zt - (1 - abar).sqrt() * eps) / abar.sqrt() / self.scaling, z0 / self.scaling
        else:
            pred, target = eps, noise
        loss = F.mse_loss(b.face_mask * pred, b.face_mask * target) + \
            self.hair_weight * F.mse_loss(b.hair_mask * pred, b.hair_mask * target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.mlps.parameters(), self.grad_clip)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.embeddings[0].rows = self.embeddings[1].rows = None
        return float(loss.detach())


def run_train_variant(components: Any, variant: Variant, resolution: int, timed_steps: int,
                      warmup_steps: int, identity_steps: int, compile_mode: str | None,
                      seed: int) -> dict[str, Any]:
    """Time ``timed_steps`` faithful training steps after ``warmup_steps``; returns a row whose
    ``step_s`` is their mean, seconds."""
    device = components.device
    with applied(components, variant), signal_embeddings(components) as embeddings:
        unet_call = compiled(components.unet, compile_mode) if variant.compile else components.unet
        setup_s, batch = common.time_once(lambda: make_train_batch(components, resolution, seed),
                                          device)
        step = FaithfulTrainStep(components, batch, unet_call, embeddings, seed)
        warm = common.time_repeats(step, device, repeats=warmup_steps, warmup=0) \
            if warmup_steps else None
        weights = common.allocated_gib(device)
        common.reset_peak_memory(device)
        timing = common.time_repeats(step, device, repeats=timed_steps, warmup=0)
        mean = sum(timing.seconds) / len(timing.seconds)
        return {"step_s": mean, "min_s": min(timing.seconds), "max_s": max(timing.seconds),
                "repeats": timed_steps, "warmup_s": sum(warm.seconds) if warm else 0.0,
                "setup_s": setup_s, "identity_steps": identity_steps,
                "identity_s": setup_s + identity_steps * mean,
                "weights_gib": weights, "peak_gib": common.peak_memory_gib(device)}


def real_trainer() -> tuple[type | None, str]:
    """``stableidentity.trainer.StableIdentityTrainer`` if importable, else (None, why not)."""
    try:
        from stableidentity.trainer import StableIdentityTrainer
    except Exception as exc:  # noqa: BLE001 - not written yet, or broken
        return None, f"stableidentity.trainer unavailable ({type(exc).__name__}: {exc})"
    return StableIdentityTrainer, "stableidentity.trainer.StableIdentityTrainer"


def synthetic_face(seed: int, size: int = 512) -> tuple[Any, Any]:
    """An aligned face stand-in and its masks: (AlignedFace, FaceMasks) of random pixels, the
    FFHQ template landmarks, an elliptic face mask and a hair band above it. Detection, alignment
    and parsing run once per photo before training and are not part of the step time."""
    import numpy as np

    from faces.face_prep import FFHQ_TEMPLATE_512, AlignedFace
    from stableidentity.masks import FaceMasks

    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:size, 0:size] / size
    face = ((xx - 0.5) / 0.28) ** 2 + ((yy - 0.55) / 0.36) ** 2 <= 1.0
    hair = (((xx - 0.5) / 0.36) ** 2 + ((yy - 0.42) / 0.42) ** 2 <= 1.0) & ~face & (yy < 0.5)
    aligned = AlignedFace(image=image, landmarks=FFHQ_TEMPLATE_512 * (size / 512),
                          source_box=(0.0, 0.0, float(size), float(size)))
    return aligned, FaceMasks(face=face, hair=hair, source="parser")


def run_trainer_variant(trainer_cls: type, components: Any, variant: Variant, resolution: int,
                        timed_steps: int, warmup_steps: int, identity_steps: int,
                        compile_mode: str | None, seed: int) -> dict[str, Any]:
    """Time the app's own training loop, ``StableIdentityTrainer.run``, for one variant.

    The variant's switches are in the config: ``runtime.*`` applied to the shared UNet/VAE by
    ``apply_runtime_switches`` (what the loader does), ``train.*`` read by the trainer
    (checkpointing, mixed precision, augmentation pool). The augmentation pool is filled first
    (``pool_fill_s``: the VAE encodes of the first ``augment_pool`` steps); then steps run in
    chunks of ``PREFETCH`` through ``run()`` (one loss read-back per step, one step behind, as in
    the app). ``step_s`` is the mean per step, ``min_s`` / ``max_s`` the fastest and slowest
    chunk per step; ``identity_s`` = setup + pool fill + ``identity_steps`` x ``step_s``. With
    ``augment_pool: 0`` each chunk encodes its own 8 views, so ``step_s`` includes them.
    """
    from models.loading import apply_runtime_switches
    from stableidentity import trainer as trainer_module

    prefetch = int(getattr(trainer_module, "PREFETCH", 1))
    chunks = max(1, -(-timed_steps // prefetch))
    device = components.device
    config = variant.config(components.config, compile_mode)
    config = config.replace(train=dataclasses.replace(config.train, resolution=resolution, seed=seed))
    try:
        with applied(components, variant, product=True):
            apply_runtime_switches(components.unet, components.vae, config.runtime)
            run_components = dataclasses.replace(components, config=config, dtype=variant.dtype)
            aligned, masks = synthetic_face(seed)
            setup_s, trainer = common.time_once(
                lambda: trainer_cls(run_components, aligned, seed=seed, masks=masks), device)
            pool = getattr(trainer, "augment_pool", None)
            fill_s = 0.0
            if pool:
                fill_s, _ = common.time_once(lambda: [trainer.next_view() for _ in range(pool)], device)
            elif warmup_steps:  # keep the fresh-augmentation chunks aligned with the VAE batches
                warmup_steps = -(-warmup_steps // prefetch) * prefetch
            warm, warm_losses = common.time_once(lambda: trainer.run(warmup_steps), device) \
                if warmup_steps else (0.0, None)
            weights = common.allocated_gib(device)
            common.reset_peak_memory(device)
            timing = common.time_repeats(lambda: trainer.run(prefetch), device, repeats=chunks, warmup=0)
            per_step = [t / prefetch for t in timing.seconds]
            mean = sum(per_step) / len(per_step)
            return {"step_s": mean, "min_s": min(per_step), "max_s": max(per_step),
                    "repeats": chunks * prefetch, "warmup_s": warm, "setup_s": setup_s,
                    "pool_fill_s": fill_s, "identity_steps": identity_steps,
                    "identity_s": setup_s + fill_s + identity_steps * mean,
                    "weights_gib": weights, "peak_gib": common.peak_memory_gib(device),
                    "gradient_checkpointing": bool(components.unet.is_gradient_checkpointing),
                    "autocast": str(getattr(trainer, "autocast_dtype", None)).removeprefix("torch."),
                    "train_augment_pool": pool,
                    # same seed, same draws in every variant: comparable step for step (fast vs eager)
                    "warmup_losses": warm_losses}
    finally:
        apply_runtime_switches(components.unet, components.vae, components.config.runtime)
        if components.unet.is_gradient_checkpointing:
            components.unet.disable_gradient_checkpointing()
