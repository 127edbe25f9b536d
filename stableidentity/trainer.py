"""Learn one identity from one photo: StableIdentity on SDXL (REFERENCE.md section 2).

:func:`train_identity` is the public entry point: photo -> aligned face -> masks, FR-ViT feature,
celebrity statistics -> two MLPs trained with the two-phase masked diffusion loss through the
frozen SDXL -> the final embeddings ``v = mu + sigma * MLP(f)`` for both text encoders, in the
SDXL textual-inversion layout (``clip_l`` (2, 768), ``clip_g`` (2, 1280)).

:class:`StableIdentityTrainer` holds one run's state (exposed for tests and the benchmark): every
per-run constant (face, masks, features, statistics, tokenised templates, time ids) is computed
once; augmented training images are VAE-encoded in small batches ahead of the steps that use them.
Only the MLPs have trainable parameters; the shared components are never modified.

**Augmentation pool** (``train.augment_pool``, default :data:`AUGMENT_POOL` = 64). VAE-encoding
one 512x512 image costs 1.1 TFLOP, a third of the UNet's forward + backward (3.2 TFLOP), so
encoding a fresh augmentation every step would make a step ~1.4x a bare UNet step. The first
``augment_pool`` steps each get a fresh augmentation, exactly as in the paper; later steps draw
uniformly from those encoded views, each time with a fresh VAE posterior sample, timestep, noise
and template. Runs no longer than the pool are unaffected; ``augment_pool: 0`` in the config (or
``augment_pool=None`` here) encodes a fresh augmentation every step.

**Precision** (``train.mixed_precision``, ``train.mlp_dtype``). The MLPs, their outputs, the loss
and the optimiser state are float32 (``mlp_dtype: weights`` casts the MLPs to the UNet weights'
dtype, as the official code does under mixed precision), and the text encoders run in their own
dtype without autocast, as the inference pipeline runs them. The UNet pass: ``auto`` autocasts to the components' dtype on CUDA
when that is float16/bfloat16 (float32 elsewhere); ``no`` runs it in the weights' dtype with no
autocast (pure bf16 on a bf16 GPU, as inference does); ``bf16``/``fp16`` autocast to that dtype
on any device (e.g. float32 weights). A float16 UNet pass gets a GradScaler.

**Gradient checkpointing** (``train.gradient_checkpointing``). The frozen UNet keeps every
activation of the forward pass for the backward into the conditioning; with checkpointing its
blocks keep only their inputs and recompute the rest during the backward (one more UNet forward
per step, much less activation memory). diffusers checks ``torch.is_grad_enabled()`` (not
``module.training``), so it works on the frozen, eval-mode UNet, and gradients are unchanged
(tested). The flag lives on the shared UNet and follows the config when a trainer is built; it
has no effect on inference, which runs without autograd.

**What autograd records.** Only the path from the MLPs: FR-ViT features, celebrity statistics,
templates and time ids are constants; VAE encoding runs under ``no_grad``; the frozen weights
have ``requires_grad`` False, so the backward computes activation gradients only. The text
encoders carry gradients from the two injected rows on; the few positions before them (BOS and
the template's first words, ~4 of 77) are carried along in the same tensors (their share of
the encoders' backward is ~5%, of a step ~0.25%: not worth a hand-written split attention).

**Fast step** (``train.fast_step``: auto | on | off). ``auto`` (on for CUDA) runs each step
through :class:`stableidentity.fast_step.FastStep`: the same draws, written into static buffers,
and on CUDA one CUDA-graph replay of the whole step. ``off`` runs the eager step below unchanged.

**Host syncs.** A step never reads a value back from the device; :meth:`StableIdentityTrainer.run`
reads step k's loss only after queuing step k + 1.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

from stableidentity.adain import CelebStats, adain, celeb_stats
from stableidentity.augment import AugmentSettings, augment, masks_to_latent
from stableidentity.celebrities import celebrity_names
from stableidentity.conditioning import (SDXLConditioning, TokenizedPrompts, add_time_ids,
                                         sdxl_conditioning, tokenize_templates)
from faces.face_prep import AlignedFace, FacePrepError, LoadedPhoto, PhotoInput, load_photo
from faces.photo_check import check_photo
from stableidentity.fast_step import fast_step_for
from stableidentity.identity_encoder import identity_features
from stableidentity.loss import LossTerms, add_noise, two_phase_loss, z0_divisor
from stableidentity.masks import FaceMasks, face_masks
from stableidentity.mlp import IdentityMLP
from stableidentity.templates import TEMPLATES

if TYPE_CHECKING:
    from models.loading import Components

#: Augmented samples VAE-encoded per VAE call (fewer, larger calls while the pool fills).
PREFETCH = 8
#: Distinct encoded augmentations per run; later steps reuse them (module docstring). The
#: default of ``train.augment_pool``.
AUGMENT_POOL = 64
#: ``augment_pool`` argument default: take ``config.train.augment_pool``.
FROM_CONFIG = "config"


@dataclass
class TrainProgress:
    """Reported after every step (``step`` counts from 1 to ``total``)."""

    step: int
    total: int
    loss: float
    elapsed_s: float
    eta_s: float


@dataclass
class TrainedIdentity:
    """A learned identity: what the identity library stores.

    Attributes:
        clip_l: float32 (2, d1) on cpu: the final embeddings of the two signal words for encoder 1.
        clip_g: float32 (2, d2) on cpu: the same for encoder 2.
        face: the aligned 512x512 face crop (thumbnail).
        photo_sha256: sha256 hex of the uploaded file bytes (of the RGB array if there were none).
        steps: optimisation steps run.
        final_loss: mean loss of the last 10% of steps (at least one).
        warnings: notes from face preparation and mask selection.
    """

    clip_l: torch.Tensor
    clip_g: torch.Tensor
    face: PIL.Image.Image
    photo_sha256: str
    steps: int
    final_loss: float
    warnings: list[str] = field(default_factory=list)


class TrainingCancelled(Exception):
    """Raised by :func:`train_identity` when its ``cancel`` event is set."""


@dataclass
class EncodedView:
    """One augmented image on the latent grid: the VAE posterior and the shrunk masks.

    Attributes:
        mean, std: (1, 4, h, w) the VAE's latent distribution (unscaled).
        face_mask, hair_mask: float32 (1, 1, h, w) 0/1.
        flipped: whether the image was mirrored.
    """

    mean: torch.Tensor
    std: torch.Tensor
    face_mask: torch.Tensor
    hair_mask: torch.Tensor
    flipped: bool


@dataclass
class TrainingSample:
    """One augmented sample on the latent grid.

    Attributes:
        latents: (1, 4, h, w) clean latents, scaled by the VAE scaling factor.
        face_mask, hair_mask: float32 (1, 1, h, w) 0/1.
        flipped: whether the image was mirrored (selects the FR-ViT feature).
    """

    latents: torch.Tensor
    face_mask: torch.Tensor
    hair_mask: torch.Tensor
    flipped: bool


def photo_digest(loaded: LoadedPhoto) -> str:
    """sha256 hex of the file bytes, or of the decoded RGB array when there were no bytes."""
    data = loaded.raw_bytes if loaded.raw_bytes is not None else np.ascontiguousarray(loaded.rgb).tobytes()
    return hashlib.sha256(data).hexdigest()


def set_gradient_checkpointing(unet: torch.nn.Module, enabled: bool) -> bool:
    """Turn diffusers' gradient checkpointing of ``unet`` on or off; returns whether it changed.

    Idempotent (nothing is touched when the UNet already matches). Affects only calls with
    autograd enabled: panel generation runs under ``no_grad`` and never checkpoints.
    """
    if bool(unet.is_gradient_checkpointing) == bool(enabled):
        return False
    (unet.enable_gradient_checkpointing if enabled else unet.disable_gradient_checkpointing)()
    return True


def unet_precision(mixed_precision: str, device: torch.device, dtype: torch.dtype
                   ) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, whether a GradScaler is needed) of the training UNet pass.

    ``dtype`` is the UNet weights' dtype; see the module docstring for the modes.
    """
    if mixed_precision == "auto":
        autocast = dtype if device.type == "cuda" and dtype != torch.float32 else None
    elif mixed_precision == "no":
        autocast = None
    elif mixed_precision in ("bf16", "fp16"):
        autocast = torch.bfloat16 if mixed_precision == "bf16" else torch.float16
    else:
        raise ValueError(f"mixed_precision must be auto, no, bf16 or fp16, got {mixed_precision!r}")
    compute = autocast if autocast is not None else dtype
    return autocast, compute == torch.float16


def mlp_dtype(choice: str, weights_dtype: torch.dtype, scaled: bool) -> torch.dtype:
    """dtype of the MLPs and their optimiser state (``train.mlp_dtype``).

    ``float32`` (default): float32 whatever the UNet runs in. ``weights``: the UNet weights'
    dtype, as the official code casts its embedding manager under mixed precision; stored weights
    of ~0.02 in bfloat16 have a resolution of ~1e-4, so about half of Adam's 5e-5 steps round
    away (docs/STABLEIDENTITY.md). float16 MLPs cannot train under a GradScaler (it refuses to
    unscale float16 gradients), so that combination is refused with a message.
    """
    if choice == "float32":
        return torch.float32
    if choice != "weights":
        raise ValueError(f"train.mlp_dtype must be float32 or weights, got {choice!r}")
    if scaled and weights_dtype == torch.float16:
        raise ValueError("train.mlp_dtype: weights cannot train float16 MLPs under a gradient scaler; "
                         "use mlp_dtype: float32 (the default) or bfloat16 weights")
    return weights_dtype


def _image_tensor(image: np.ndarray, resolution: int, device: torch.device) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (3, res, res) in [0, 1] on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1).float() / 255.0
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        x = F.interpolate(x[None], size=(resolution, resolution), mode="bilinear", align_corners=False,
                          antialias=True)[0]
    return x


class StableIdentityTrainer:
    """State of one identity-training run on shared, frozen components.

    Args:
        components: ``models.loading.Components`` (read-only here).
        aligned: the prepared face (:func:`faces.face_prep.prepare_face`).
        seed: seeds MLP initialisation, augmentation, timesteps and noise.
        learning_rate: defaults to ``config.train.learning_rate``.
        augmentation: augmentation settings (``NO_AUGMENT`` to switch off); default from the
            config (``AugmentSettings.from_config``).
        masks: precomputed masks (default: parsed with ``components.face_parser``).
        augment_pool: distinct augmentations to encode before reusing them (None: never reuse);
            default ``config.train.augment_pool`` (0 there means None).
        fast_step: ``auto``, ``on`` or ``off`` (:mod:`stableidentity.fast_step`); default
            ``config.train.fast_step``.

    ``config.train.gradient_checkpointing`` is applied to the shared UNet here and
    ``config.train.mixed_precision`` decides the UNet pass's autocast (module docstring).
    """

    def __init__(self, components: Components, aligned: AlignedFace, *, seed: int | None = None,
                 learning_rate: float | None = None, augmentation: AugmentSettings | None = None,
                 masks: FaceMasks | None = None, augment_pool: int | None | str = FROM_CONFIG,
                 fast_step: str = FROM_CONFIG) -> None:
        if augment_pool == FROM_CONFIG:
            augment_pool = components.config.train.augment_pool or None
        if augment_pool is not None and (isinstance(augment_pool, (bool, str)) or augment_pool < 1):
            raise ValueError(f"augment_pool must be at least 1 or None, got {augment_pool}")
        for name in ("text_encoder", "text_encoder_2", "unet", "vae", "fr_vit"):
            module = getattr(components, name)
            if any(p.requires_grad for p in module.parameters()):
                raise ValueError(f"components.{name} must be frozen (requires_grad False) for training")
        cfg = components.config.train
        self.components = components
        self.config = cfg
        self.device = components.device
        self.dtype = components.dtype
        self.aligned = aligned
        self.augmentation = augmentation if augmentation is not None else AugmentSettings.from_config(cfg)
        self.seed = cfg.seed if seed is None else int(seed)
        self.resolution = cfg.resolution
        self.num_train_timesteps = min(cfg.num_train_timesteps,
                                       components.train_scheduler.config.num_train_timesteps)

        # randomness: CPU generator for choices and init, device generator for noise and VAE sampling
        self.generator = torch.Generator().manual_seed(self.seed)
        self.noise_generator = torch.Generator(device=self.device).manual_seed(self.seed + 1)

        # per-run constants (model work on the shared modules: one turn of the device gate)
        with self.gate():
            self.masks = masks if masks is not None else face_masks(components.face_parser,
                                                                    aligned.image, aligned.landmarks)
            # (2, hidden): the FR-ViT crop and its mirror image (crop first, then flip, as officially)
            self.features = identity_features(components.fr_vit, aligned.image,
                                              with_mirror=True).to(self.device)
            model_id = components.config.model.base_name
            names = celebrity_names(cfg.celebrity_names)
            self.stats_l: CelebStats = celeb_stats(components.text_encoder, components.tokenizer,
                                                   f"{model_id}/text_encoder", names=names).to(self.device)
            self.stats_g: CelebStats = celeb_stats(components.text_encoder_2, components.tokenizer_2,
                                                   f"{model_id}/text_encoder_2", names=names).to(self.device)
            set_gradient_checkpointing(components.unet, cfg.gradient_checkpointing)
        self.prompts: TokenizedPrompts = tokenize_templates(components.tokenizer, components.tokenizer_2,
                                                            TEMPLATES).to(self.device)
        self.time_ids = add_time_ids((self.resolution,) * 2, (0, 0), (self.resolution,) * 2,
                                     dtype=self.dtype, device=self.device)
        self.alphas_cumprod = components.train_scheduler.alphas_cumprod.to(self.device, torch.float32)
        self.image = _image_tensor(aligned.image, self.resolution, self.device)
        self.mask_image = F.interpolate(self.masks.to_tensor().to(self.device)[None],
                                        size=(self.resolution,) * 2, mode="area")[0]
        self.augment_pool = augment_pool
        self._queue: deque[EncodedView] = deque()
        self._pool: list[EncodedView] = []

        self.autocast_dtype, scaled = unet_precision(cfg.mixed_precision, self.device,
                                                     components.unet.dtype)
        self.scaler = torch.amp.GradScaler(self.device.type) if scaled else None

        # the trainable part: two MLPs, float32 unless train.mlp_dtype says the UNet's dtype
        self.mlp_dtype = mlp_dtype(cfg.mlp_dtype, components.unet.dtype, scaled)
        hidden = self.features.shape[1]
        d1 = components.text_encoder.get_input_embeddings().weight.shape[1]
        d2 = components.text_encoder_2.get_input_embeddings().weight.shape[1]
        make = dict(depth=cfg.mlp_depth, hidden_factor=cfg.mlp_hidden_factor, final_affine=cfg.mlp_final_affine,
                    lr_mul=cfg.lr_multiplier, init_std=cfg.mlp_init_std, generator=self.generator)
        self.mlp_l = IdentityMLP(hidden, d1, **make).to(self.device, self.mlp_dtype)
        self.mlp_g = IdentityMLP(hidden, d2, **make).to(self.device, self.mlp_dtype)
        self.optimizer = torch.optim.AdamW(
            self.trainable_parameters(), lr=cfg.learning_rate if learning_rate is None else learning_rate,
            betas=(cfg.adam_beta1, cfg.adam_beta2), weight_decay=cfg.weight_decay, eps=cfg.adam_epsilon,
            fused=self.device.type in ("cpu", "cuda"))  # one kernel for all parameters
        # None: the eager step (train.fast_step off, or auto off CUDA); else the static-buffer step
        self.fast_step = fast_step_for(self, cfg.fast_step if fast_step == FROM_CONFIG else fast_step, scaled)

    def gate(self) -> contextlib.AbstractContextManager:
        """The device gate for one unit of training work (a step, the run's set-up), or nothing
        when ``runtime.overlap_training`` lets training overlap generation
        (:meth:`core.concurrency.DeviceGate.training`)."""
        return self.components.gate.training(self.components.config.runtime)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context for the UNet pass: autocast to :attr:`autocast_dtype`, or a no-op (None)."""
        if self.autocast_dtype is not None:
            return torch.autocast(self.device.type, dtype=self.autocast_dtype)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ parameters and embeddings

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters of both MLPs (the only ones that train)."""
        return list(self.mlp_l.parameters()) + list(self.mlp_g.parameters())

    def embeddings(self, flipped: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Signal-word embeddings ``mu + sigma * MLP(f)``: ((1, 2, d1), (1, 2, d2)) in the MLPs' dtype
        (float32 unless ``train.mlp_dtype: weights``), with graph."""
        feature = self.features[1 if flipped else 0].unsqueeze(0).to(self.mlp_dtype)
        return adain(self.mlp_l(feature), self.stats_l), adain(self.mlp_g(feature), self.stats_g)

    def conditioning(self, template_index: int, flipped: bool = False) -> SDXLConditioning:
        """SDXL conditioning of one template with the current embeddings (graph into the MLPs).

        The text encoders run outside autocast, in their own dtype, exactly as the inference
        pipeline runs them; the float32 signal rows are cast to that dtype like stored rows.
        """
        v_l, v_g = self.embeddings(flipped)
        return sdxl_conditioning(self.components.text_encoder, self.components.text_encoder_2,
                                 self.prompts, int(template_index), v_l, v_g, self.time_ids)

    @torch.no_grad()
    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(clip_l (2, d1), clip_g (2, d2)) float32 on cpu, from the un-flipped face."""
        v_l, v_g = self.embeddings(flipped=False)
        return v_l[0].float().cpu(), v_g[0].float().cpu()

    # ------------------------------------------------------------------ data

    @torch.no_grad()
    def encode_views(self, count: int) -> list[EncodedView]:
        """Augment ``count`` images and VAE-encode them in one batch."""
        vae = self.components.vae
        drawn = [augment(self.image, self.mask_image, self.generator, self.augmentation)
                 for _ in range(count)]
        pixels = torch.stack([d.image for d in drawn]) * 2.0 - 1.0
        posterior = vae.encode(pixels.to(vae.dtype)).latent_dist
        masks = masks_to_latent(torch.stack([d.masks for d in drawn]), tuple(posterior.mean.shape[-2:]),
                                resample=self.augmentation.resample)
        return [EncodedView(mean=posterior.mean[i:i + 1].float(), std=posterior.std[i:i + 1].float(),
                            face_mask=masks[i:i + 1, 0:1], hair_mask=masks[i:i + 1, 1:2], flipped=d.flipped)
                for i, d in enumerate(drawn)]

    def next_view(self) -> EncodedView:
        """A fresh augmentation (encoded :data:`PREFETCH` at a time) until the pool is full, then a
        uniformly drawn pooled one."""
        pool = self.augment_pool
        if pool is not None and len(self._pool) >= pool:
            return self._pool[int(torch.randint(0, len(self._pool), (), generator=self.generator))]
        if not self._queue:
            count = PREFETCH if pool is None else min(PREFETCH, pool - len(self._pool))
            self._queue.extend(self.encode_views(count))
        view = self._queue.popleft()
        if pool is not None:
            self._pool.append(view)
        return view

    def next_sample(self) -> TrainingSample:
        """The next training sample: a view and a fresh sample of its VAE posterior (scaled)."""
        view = self.next_view()
        eps = torch.randn(view.mean.shape, generator=self.noise_generator, device=self.device)
        latents = (view.mean + view.std * eps) * self.components.vae.config.scaling_factor
        return TrainingSample(latents=latents, face_mask=view.face_mask, hair_mask=view.hair_mask,
                              flipped=view.flipped)

    def draw_timesteps(self, batch: int = 1) -> torch.Tensor:
        """t ~ U{0..T-1}, int64 (batch,), drawn on the device (no host-device copy)."""
        return torch.randint(0, self.num_train_timesteps, (batch,), generator=self.noise_generator,
                             device=self.device)

    def draw_noise(self, like: torch.Tensor) -> torch.Tensor:
        """Standard normal noise shaped like ``like``."""
        return torch.randn(like.shape, generator=self.noise_generator, device=self.device,
                           dtype=torch.float32)

    # ------------------------------------------------------------------ loss and step

    def loss(self, sample: TrainingSample, timesteps: torch.Tensor, noise: torch.Tensor,
             template_index: int) -> LossTerms:
        """Forward pass: conditioning -> noised latents -> UNet -> two-phase masked loss (with graph)."""
        cfg = self.config
        unet = self.components.unet
        cond = self.conditioning(template_index, sample.flipped)
        z0 = sample.latents.float()
        z_t = add_noise(z0, noise, timesteps, self.alphas_cumprod)
        with self.autocast():
            eps_hat = unet(z_t.to(unet.dtype), timesteps, **cond.unet_kwargs()).sample.float()
        return two_phase_loss(eps_hat=eps_hat, eps=noise, z_t=z_t, z0=z0, timesteps=timesteps,
                              face_mask=sample.face_mask, hair_mask=sample.hair_mask,
                              alphas_cumprod=self.alphas_cumprod, alpha=cfg.alpha,
                              num_train_timesteps=self.num_train_timesteps, hair_weight=cfg.hair_weight,
                              vae_scaling_factor=z0_divisor(cfg.z0_weighting,
                                                            self.components.vae.config.scaling_factor))

    def queue_step(self, *, sample: TrainingSample | None = None, timesteps: torch.Tensor | None = None,
                   noise: torch.Tensor | None = None, template_index: int | None = None) -> torch.Tensor:
        """One optimisation step without waiting for the device; anything not given is drawn at
        random. Returns the loss as a detached 0-d tensor (reading it waits for the step).

        Holds the device gate for the step (:meth:`gate`), so a panel drawn by another thread
        waits for at most one step; the loss read-back happens outside it.
        """
        with self.gate():
            return self._queue_step(sample, timesteps, noise, template_index)

    def _queue_step(self, sample: TrainingSample | None, timesteps: torch.Tensor | None,
                    noise: torch.Tensor | None, template_index: int | None) -> torch.Tensor:
        sample = sample if sample is not None else self.next_sample()
        timesteps = timesteps.to(self.device) if timesteps is not None else self.draw_timesteps()
        noise = noise if noise is not None else self.draw_noise(sample.latents)
        if template_index is None:
            template_index = int(torch.randint(0, len(self.prompts.templates), (), generator=self.generator))
        if self.fast_step is not None:
            return self.fast_step(sample, timesteps, noise, int(template_index))
        terms = self.loss(sample, timesteps, noise, template_index)
        params = self.trainable_parameters()
        if self.scaler is not None:
            self.scaler.scale(terms.total).backward()
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            terms.total.backward()
            torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return terms.total.detach()

    def step(self, *, sample: TrainingSample | None = None, timesteps: torch.Tensor | None = None,
             noise: torch.Tensor | None = None, template_index: int | None = None) -> float:
        """:meth:`queue_step` and wait for its loss (float). Raises FloatingPointError if not finite."""
        return _finite(self.queue_step(sample=sample, timesteps=timesteps, noise=noise,
                                       template_index=template_index))

    def run(self, steps: int, *, progress: Callable[[TrainProgress], None] | None = None,
            cancel: threading.Event | None = None) -> list[float]:
        """``steps`` optimisation steps with progress reports and cancellation. Returns the losses.

        Step ``k`` is reported once step ``k + 1`` has been queued, so the host never waits for an
        idle device (the loss read-back is the only synchronisation). ``cancel`` is checked before
        each step; at most one step runs after it is set.
        """
        losses: list[float] = []
        start = time.perf_counter()

        def report(loss: torch.Tensor) -> None:
            losses.append(_finite(loss))
            if progress is not None:
                elapsed = time.perf_counter() - start
                done = len(losses)
                progress(TrainProgress(step=done, total=steps, loss=losses[-1], elapsed_s=elapsed,
                                       eta_s=elapsed / done * (steps - done)))

        pending: torch.Tensor | None = None
        for index in range(steps):
            if cancel is not None and cancel.is_set():
                raise TrainingCancelled(f"training cancelled after {index} of {steps} steps")
            loss = self.queue_step()
            if pending is not None:
                report(pending)
            pending = loss
        if pending is not None:
            report(pending)
        return losses


def _finite(loss: torch.Tensor) -> float:
    value = float(loss)
    if not np.isfinite(value):
        raise FloatingPointError(f"training loss became {value}; try a lower learning rate or float32")
    return value


def _iter_warnings(aligned: AlignedFace, masks: FaceMasks) -> Iterator[str]:
    yield from aligned.warnings
    if masks.source == "landmarks":
        yield f"face parsing was not usable ({masks.reason}); masks drawn from the face landmarks"


def train_identity(components: Components, photo: PhotoInput, *, steps: int | None = None,
                   progress: Callable[[TrainProgress], None] | None = None,
                   cancel: threading.Event | None = None, seed: int | None = None) -> TrainedIdentity:
    """Learn an identity's two signal-word embeddings per SDXL text encoder from one photo.

    Args:
        components: loaded models (``models.loading.load_components``); not modified.
        photo: a file path, the uploaded bytes, a PIL image, or an RGB uint8 array (H, W, 3).
        steps: optimisation steps (default ``config.train.steps``).
        progress: called after every step with a :class:`TrainProgress`.
        cancel: when set, training stops before the next step with :class:`TrainingCancelled`.
        seed: default ``config.train.seed``; the same seed and photo give the same result.
    Raises:
        FacePrepError: the photo is unreadable, too small, shows no face or two or more faces
            (:func:`faces.photo_check.check_photo`, before any training).
        TrainingCancelled: ``cancel`` was set.
    """
    total = components.config.train.steps if steps is None else int(steps)
    if total < 1:
        raise ValueError(f"steps must be at least 1, got {total}")
    loaded = load_photo(photo)
    aligned = check_photo(loaded, components.face_detector, components.config.face)
    if cancel is not None and cancel.is_set():
        raise TrainingCancelled("training cancelled before it started")
    trainer = StableIdentityTrainer(components, aligned, seed=seed)
    losses = trainer.run(total, progress=progress, cancel=cancel)
    clip_l, clip_g = trainer.final_embeddings()
    tail = losses[-max(1, total // 10):]
    return TrainedIdentity(clip_l=clip_l, clip_g=clip_g, face=aligned.to_pil(),
                           photo_sha256=photo_digest(loaded),
                           steps=total, final_loss=float(np.mean(tail)),
                           warnings=list(_iter_warnings(aligned, trainer.masks)))


__all__ = ["AUGMENT_POOL", "FROM_CONFIG", "PREFETCH", "EncodedView", "FacePrepError",
           "StableIdentityTrainer", "TrainProgress", "TrainedIdentity", "TrainingCancelled",
           "TrainingSample", "photo_digest", "set_gradient_checkpointing", "train_identity",
           "unet_precision"]
