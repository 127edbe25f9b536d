"""The training step as one function over static buffers (``train.fast_step``; issue 19).

Every shape in a StableIdentity step is fixed for a run (batch 1, ``resolution``², 77 tokens): the
sample, timestep, noise, template and mirrored feature change only tensor *contents*. So the
whole step (both MLPs and AdaIN, both text encoders with the two identity rows, the UNet forward
and backward, the two-phase masked loss, gradient clipping and the optimiser) is one function
that reads its inputs from static buffers. On CUDA it is captured once as a CUDA graph
(``torch.cuda.graph``, warm-up on a side stream) and each later step is a copy into the buffers
plus one graph replay: a few launches instead of ~16,000 kernels dispatched from Python
(REFERENCE.md section 8: the eager step is launch-bound, 76 ms of GPU work in 310-410 ms).
Elsewhere (``on`` on a CPU) the same function runs eagerly: same numbers, no capture.

Differences from the eager step (:meth:`StableIdentityTrainer._queue_step`), all numerically
small and tested (tests/test_si_fast_step.py):

* **Static pooled length.** Encoder 2's last layer runs on the first ``max(eos) + 1`` positions
  of every template instead of the current template's own; with causal attention the end
  token's state does not depend on later positions, so only the kernels' summation order differs.
* **No autocast round trips.** When the UNet's weights are already in the compute dtype (bf16
  weights, ``mixed_precision: auto``), the UNet runs in the weights' dtype without autocast (as
  inference does), so autocast's ~1,800 per-step dtype conversions disappear; float32 stays
  where the loss needs it (noise, latents, the loss itself). Autocast to another dtype (float32
  weights with ``bf16``) is kept, with its weight-cast cache off (a cache does not survive graph
  capture).
* **Channels-last UNet on CUDA**: cuDNN convolutions run NHWC without layout conversions (10% of
  the GPU time of an eager step). The shared UNet is switched once, as ``runtime.channels_last``
  does; panels draw with it unchanged. A captured graph reads the weights' storage: when a
  shared weight's storage changes (another part switches the memory format back), the next step
  captures again instead of replaying on freed memory.
* **Optimiser**: AdamW ``fused=True`` (and ``capturable=True`` on CUDA, so its step counter
  lives on the device); clipping uses ``clip_grad_norm_`` with no host read.

Should capture fail (an operation in the step that a CUDA graph cannot hold), the step logs one
warning and runs the same static-buffer function eagerly from then on; the parameters and the
optimiser state are restored first, so training continues where it was.

Not used with a float16 UNet pass: its GradScaler reads ``found_inf`` back to the host every step
(``auto`` falls back to the eager step; ``on`` is refused with one line).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from stableidentity.adain import adain
from stableidentity.conditioning import encode_with_signal_embeddings
from stableidentity.loss import add_noise, two_phase_loss, z0_divisor

if TYPE_CHECKING:  # annotations only (the trainer imports this module)
    from stableidentity.trainer import StableIdentityTrainer, TrainingSample

logger = logging.getLogger(__name__)

#: warm-up steps on a side stream before capture (CUDA graphs need allocations settled first)
WARMUP_STEPS = 3


def resolve_fast_step(choice: str, device: torch.device, scaled: bool) -> bool:
    """Whether the fast step runs (``train.fast_step``).

    ``auto``: on for CUDA without a gradient scaler, off elsewhere. ``on``: everywhere (on a CPU
    without graph capture); refused with a float16 UNet pass. ``off``: never.
    Raises ValueError (one line) on an unknown choice or ``on`` with a gradient scaler.
    """
    if choice == "off":
        return False
    if choice == "auto":
        return device.type == "cuda" and not scaled
    if choice != "on":
        raise ValueError(f"train.fast_step must be auto, on or off, got {choice!r}")
    if scaled:
        raise ValueError("train.fast_step: on cannot run a float16 UNet pass (its gradient scaler reads "
                         "back to the host every step); use bf16 or fast_step: auto")
    return True


@dataclass
class StaticInputs:
    """The step's inputs, written in place before each step (shapes fixed for the run).

    Attributes:
        latents: float32 (1, 4, h, w) clean latents, scaled.
        noise: float32 (1, 4, h, w) the noise to add.
        face_mask, hair_mask: float32 (1, 1, h, w) 0/1.
        timesteps: int64 (1,).
        input_ids, input_ids_2: int64 (1, 77) the template's tokens for encoders 1 and 2.
        signal_positions: int64 (1, 2) where the two signal words sit.
        eos_positions: int64 (1,) encoder 2's end token.
        feature: (1, hidden) the FR-ViT feature (mirrored for flipped samples), the MLPs' dtype.
    """

    latents: torch.Tensor
    noise: torch.Tensor
    face_mask: torch.Tensor
    hair_mask: torch.Tensor
    timesteps: torch.Tensor
    input_ids: torch.Tensor
    input_ids_2: torch.Tensor
    signal_positions: torch.Tensor
    eos_positions: torch.Tensor
    feature: torch.Tensor


class FastStep:
    """One run's static-buffer training step, captured as a CUDA graph on CUDA.

    Args:
        trainer: the run (its MLPs, statistics, prompts and config are read, and its optimiser is
            replaced by a fused one over the same parameters).
        capture: capture a CUDA graph (default: when the trainer's device is CUDA).
    """

    def __init__(self, trainer: StableIdentityTrainer, *, capture: bool | None = None) -> None:
        self.trainer = trainer
        self.device = trainer.device
        self.capture = self.device.type == "cuda" if capture is None else bool(capture)
        if self.capture and self.device.type != "cuda":
            raise ValueError("CUDA graph capture needs a CUDA device")
        components = trainer.components
        unet = components.unet
        if self.device.type == "cuda":
            unet.to(memory_format=torch.channels_last)  # idempotent, as runtime.channels_last
        # autocast only when it changes the compute dtype (module docstring)
        autocast = trainer.autocast_dtype
        self.autocast_dtype = None if autocast == unet.dtype else autocast
        self.pooled_length = max(trainer.prompts.eos_index) + 1
        params = trainer.trainable_parameters()
        group = trainer.optimizer.param_groups[0]
        trainer.optimizer = torch.optim.AdamW(
            params, lr=group["lr"], betas=group["betas"], weight_decay=group["weight_decay"],
            eps=group["eps"], fused=self.device.type in ("cpu", "cuda"), capturable=self.capture)
        self.inputs: StaticInputs | None = None  # allocated by the first write (shapes of the run)
        self._graph: torch.cuda.CUDAGraph | None = None
        self._loss: torch.Tensor | None = None
        self._pointers: tuple[int, ...] = ()

    # ------------------------------------------------------------------ inputs

    def write(self, sample: TrainingSample, timesteps: torch.Tensor, noise: torch.Tensor,
              template_index: int) -> None:
        """Copy one step's inputs into the static buffers (device copies, no host sync)."""
        trainer, prompts = self.trainer, self.trainer.prompts
        if self.inputs is None:
            self.inputs = StaticInputs(
                latents=torch.empty_like(sample.latents, dtype=torch.float32),
                noise=torch.empty_like(noise, dtype=torch.float32),
                face_mask=torch.empty_like(sample.face_mask, dtype=torch.float32),
                hair_mask=torch.empty_like(sample.hair_mask, dtype=torch.float32),
                timesteps=torch.zeros(1, dtype=torch.int64, device=self.device),
                input_ids=prompts.input_ids[:1].clone(), input_ids_2=prompts.input_ids_2[:1].clone(),
                signal_positions=prompts.signal_positions[:1].clone(),
                eos_positions=prompts.eos_positions[:1].clone(),
                feature=trainer.features[:1].to(trainer.mlp_dtype).clone())
        x = self.inputs
        rows = slice(template_index, template_index + 1)
        x.latents.copy_(sample.latents)
        x.noise.copy_(noise)
        x.face_mask.copy_(sample.face_mask)
        x.hair_mask.copy_(sample.hair_mask)
        x.timesteps.copy_(timesteps.reshape(1))
        x.input_ids.copy_(prompts.input_ids[rows])
        x.input_ids_2.copy_(prompts.input_ids_2[rows])
        x.signal_positions.copy_(prompts.signal_positions[rows])
        x.eos_positions.copy_(prompts.eos_positions[rows])
        index = 1 if sample.flipped else 0
        x.feature.copy_(trainer.features[index:index + 1])

    # ------------------------------------------------------------------ the step

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, cache_enabled=False)

    def forward_backward(self) -> torch.Tensor:
        """Loss of the buffered inputs, backward, clip and optimiser step; returns the loss (0-d,
        float32, detached). Reads no value back to the host."""
        trainer, x = self.trainer, self.inputs
        c, cfg = trainer.components, trainer.config
        v_l = adain(trainer.mlp_l(x.feature), trainer.stats_l)
        v_g = adain(trainer.mlp_g(x.feature), trainer.stats_g)
        hidden_1, _ = encode_with_signal_embeddings(c.text_encoder, x.input_ids, x.signal_positions, v_l)
        hidden_2, pooled = encode_with_signal_embeddings(c.text_encoder_2, x.input_ids_2, x.signal_positions,
                                                         v_g, x.eos_positions, self.pooled_length)
        prompt_embeds = torch.cat([hidden_1, hidden_2.to(hidden_1.dtype)], dim=-1)
        z_t = add_noise(x.latents, x.noise, x.timesteps, trainer.alphas_cumprod)
        unet = c.unet
        sample = z_t.to(unet.dtype)
        if self.device.type == "cuda":
            sample = sample.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            eps_hat = unet(sample, x.timesteps, encoder_hidden_states=prompt_embeds,
                           added_cond_kwargs={"text_embeds": pooled, "time_ids": trainer.time_ids}).sample
        terms = two_phase_loss(eps_hat=eps_hat.float(), eps=x.noise, z_t=z_t, z0=x.latents,
                               timesteps=x.timesteps, face_mask=x.face_mask, hair_mask=x.hair_mask,
                               alphas_cumprod=trainer.alphas_cumprod, alpha=cfg.alpha,
                               num_train_timesteps=trainer.num_train_timesteps, hair_weight=cfg.hair_weight,
                               vae_scaling_factor=z0_divisor(cfg.z0_weighting, c.vae.config.scaling_factor))
        terms.total.backward()
        torch.nn.utils.clip_grad_norm_(trainer.trainable_parameters(), cfg.grad_clip, foreach=True)
        trainer.optimizer.step()
        return terms.total.detach()

    def _eager(self) -> torch.Tensor:
        loss = self.forward_backward()
        self.trainer.optimizer.zero_grad(set_to_none=True)
        return loss

    def _capture(self) -> None:
        """Warm up on a side stream, capture one step, then restore the parameters and optimiser
        state the warm-up changed (fresh state before the first step, the run's state on a
        re-capture), so the next step starts where the eager path would (restored on failure too)."""
        trainer = self.trainer
        params = trainer.trainable_parameters()
        saved = [p.detach().clone() for p in params]
        # the optimiser's state as it is (empty before the first step; kept on a re-capture)
        saved_state = {id(p): {k: v.clone() for k, v in state.items() if torch.is_tensor(v)}
                       for p, state in trainer.optimizer.state.items()}
        try:
            stream = torch.cuda.Stream(self.device)
            stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(stream):
                for _ in range(WARMUP_STEPS):
                    self._eager()
            torch.cuda.current_stream(self.device).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            trainer.optimizer.zero_grad(set_to_none=True)
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):  # panels may run beside it
                loss = self.forward_backward()
        finally:
            with torch.no_grad():
                for p, value in zip(params, saved):
                    p.copy_(value)
                for p, state in trainer.optimizer.state.items():
                    before = saved_state.get(id(p), {})
                    for key, value in state.items():
                        if not torch.is_tensor(value):
                            continue
                        if key in before:  # in place: a captured graph holds these tensors
                            value.copy_(before[key])
                        else:
                            value.zero_()
        self._graph, self._loss, self._pointers = graph, loss, self._weight_pointers()

    def _weight_pointers(self) -> tuple[int, ...]:
        """Storage addresses of the frozen weights a captured graph reads (a few thousand ints)."""
        c = self.trainer.components
        return tuple(p.data_ptr() for m in (c.text_encoder, c.text_encoder_2, c.unet) for p in m.parameters())

    def __call__(self, sample: TrainingSample, timesteps: torch.Tensor, noise: torch.Tensor,
                 template_index: int) -> torch.Tensor:
        """One optimisation step; returns its loss as a fresh detached 0-d tensor (reading it waits
        for the step)."""
        self.write(sample, timesteps, noise, template_index)
        if not self.capture:
            return self._eager()
        if self._graph is not None and self._weight_pointers() != self._pointers:
            # the shared weights moved (e.g. a generator switched the UNet's memory format back):
            # the graph would read freed memory, so capture again on the new storage
            self._graph = None
        if self._graph is None:
            try:
                self._capture()
            except Exception as exc:  # noqa: BLE001 - a step that cannot be captured still trains
                # (a genuine fault of the step itself raises again from the eager call below)
                logger.warning("train.fast_step: CUDA graph capture failed (%s); running the "
                               "static-buffer step without a graph", " ".join(str(exc).split())[:300])
                self.capture = False
                self.trainer.optimizer.zero_grad(set_to_none=True)
                return self._eager()
        self._graph.replay()
        return self._loss.clone()  # the static loss is overwritten by the next replay


def fast_step_for(trainer: StableIdentityTrainer, choice: str, scaled: bool
                  ) -> Callable[..., torch.Tensor] | None:
    """A :class:`FastStep` for ``trainer`` when ``choice`` (``train.fast_step``) resolves on, else None."""
    return FastStep(trainer) if resolve_fast_step(choice, trainer.device, scaled) else None


__all__ = ["WARMUP_STEPS", "FastStep", "StaticInputs", "fast_step_for", "resolve_fast_step"]
