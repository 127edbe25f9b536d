"""Speed and memory of panel generation and identity training, each optimisation on and off.

    python -m bench.bench_sdxl_random --arch sdxl-random --device cuda            # the H200 run
    python -m bench.bench_sdxl_random --arch preset --preset tiny --smoke         # CPU, seconds
    python -m bench.bench_sdxl_random --only flops                                # FLOP floor, CPU

Sections (``--only``, comma list):

* ``flops`` — FLOPs of every part of one panel and one training step, counted with
  ``torch.utils.flop_counter.FlopCounterMode`` on the meta device (no memory, no GPU), and the
  physical floor in seconds at ``--peak-tflops`` (790 bf16 TFLOP/s measured on an H200 here).
* ``panel`` — one comic panel drawn by the app's own ``pipelines.generation.PanelGenerator``
  (diffusers' ``StableDiffusionXLPipeline`` underneath) with one bound identity (random vectors
  for "Alice Smith"): 1024x1024, 30 DPM-Solver multistep steps, classifier-free guidance 8.5, the
  preset's negative prompt, PIL output (the sdxl-random defaults; ``--arch preset`` uses the
  preset's generation section). The variant's switches reach it as the app's config
  (``runtime.*``), applied by ``apply_memory_switches`` exactly as in the app.
* ``train`` — one StableIdentity training step at 512x512 and the 500-step identity it implies
  (setup + 500 x the mean step). ``--train-impl trainer`` (``auto``, the default, when it
  imports and runs) times the app's own step, ``stableidentity.trainer.StableIdentityTrainer
  .step``, on a synthetic aligned face with precomputed masks (detection and parsing run once
  per photo, before training), with the variant's switches in the app's config (``runtime.*``
  applied as the loader does, ``train.*`` read by the trainer), through ``StableIdentityTrainer.run``
  (the app's loop, one loss read-back per step, one step behind), timed in chunks of
  ``PREFETCH`` steps after the augmentation pool is filled (the fill is timed apart and added
  to the identity). ``--train-impl step`` times a faithful step written here
  instead: VAE-encode of a precomputed augmented image, both text encoders with gradients
  flowing only into the two signal-word embedding rows (the output of the two identity MLPs),
  UNet forward + backward (frozen weights: input gradients only), the two-phase masked loss,
  gradient clipping and AdamW on the two MLPs. Each row's ``train_impl`` says which ran.

Variants (``--variants``, comma list; each is ONE change from the baseline, the ``--dtype`` run with
SDPA attention and the preset's defaults), with the config key each maps to:
``baseline``, ``bf16`` / ``fp16`` / ``fp32`` (``runtime.dtype``), ``attn-default``
(``runtime.attention: default``: diffusers' ``AttnProcessor``; plus transformers' eager attention
in the text encoders, which has no config key), ``channels-last`` (``runtime.channels_last``, UNet
and VAE), ``vae-tiling`` (``runtime.vae_tiling``, panel), ``cpu-offload`` (``runtime.cpu_offload``,
panel, CUDA only), ``compile`` (``runtime.compile: on`` with ``compile_scope: whole``,
``torch.compile`` of the UNet in place with ``--compile-mode`` as ``runtime.compile_mode``; the
warm-up column then holds the compile time), ``compile-regional`` (``compile_scope: regional``:
only the UNet's repeated blocks, panel), ``fast-step`` (``train.fast_step: on``: the static-buffer
step, a CUDA graph on CUDA; the baseline runs ``fast_step: off``),
``grad-ckpt`` (``train.gradient_checkpointing``), ``no-autocast`` (``train.mixed_precision: no``),
``augment-fresh`` (``train.augment_pool: 0``); the last two need the app's trainer.

Times are seconds: CUDA events after a synchronize on GPU, ``perf_counter`` on CPU; warm-up calls
are excluded and reported separately. Peak memory is ``torch.cuda.max_memory_allocated`` over the
timed calls, GiB, weights included. The JSON (``--json``) is rewritten after every row, so a run
cut short by a timeout keeps what it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

if __package__ in (None, ""):  # allow `python bench/bench_sdxl_random.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench.arch import ARCH_CHOICES, build_arch  # noqa: E402
from stableidentity.mlp import IdentityMLP  # noqa: E402  (the app's MLP, official layout and init)

SECTIONS = ("flops", "panel", "train")
PANEL_VARIANTS = ("baseline", "bf16", "fp16", "fp32", "attn-default", "channels-last",
                  "vae-tiling", "cpu-offload", "compile", "compile-regional")
TRAIN_VARIANTS = ("baseline", "bf16", "fp16", "fp32", "attn-default", "channels-last",
                  "grad-ckpt", "no-autocast", "augment-fresh", "compile", "fast-step")
#: train variants that only the app's trainer has (the faithful step has no such switch)
TRAINER_ONLY = ("no-autocast", "augment-fresh", "fast-step")
ALL_VARIANTS = tuple(dict.fromkeys(PANEL_VARIANTS + TRAIN_VARIANTS))
DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
          "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}
H200_BF16_TFLOPS = 790.0  # 8192^3 bf16 matmul measured on this workplace's H200 (KINDS.md)
PANEL_PROMPT = "Alice Smith buys apples at a grocery store, comic style, highly detailed"
TRAIN_PROMPT = "a close-up photo of {}"


# ----------------------------------------------------------------------------- variants

@dataclass(frozen=True)
class Variant:
    """One benchmark configuration: the baseline with at most one switch changed."""

    name: str
    dtype: torch.dtype
    attention: str = "sdpa"          # sdpa | default
    channels_last: bool = False
    vae_tiling: bool = False
    cpu_offload: bool = False
    grad_ckpt: bool = False
    compile: bool = False
    compile_scope: str = "regional"  # runtime.compile_scope: regional | whole
    fast_step: str = "off"           # train.fast_step (the baseline is the eager step)
    mixed_precision: str = "auto"    # train.mixed_precision
    augment_pool: int | None = None  # train.augment_pool (None: the preset's)

    def describe(self) -> dict[str, Any]:
        return {"variant": self.name, "dtype": str(self.dtype).removeprefix("torch."),
                "attention": self.attention, "channels_last": self.channels_last,
                "vae_tiling": self.vae_tiling, "cpu_offload": self.cpu_offload,
                "grad_ckpt": self.grad_ckpt, "compile": self.compile,
                "compile_scope": self.compile_scope if self.compile else None,
                "fast_step": self.fast_step, "mixed_precision": self.mixed_precision, "augment_pool": self.augment_pool}

    def config(self, base: Any, compile_mode: str | None = None) -> Any:
        """``base`` (an AppConfig) with this variant's switches in ``runtime`` and ``train``:
        what the app would load with the same choice made in its YAML."""
        runtime = dataclasses.replace(
            base.runtime, dtype=str(self.dtype).removeprefix("torch."), attention=self.attention,
            channels_last=self.channels_last, vae_tiling=self.vae_tiling,
            cpu_offload=self.cpu_offload, compile="on" if self.compile else "off",
            compile_scope=self.compile_scope, compile_mode=compile_mode or base.runtime.compile_mode)
        train = dataclasses.replace(base.train, gradient_checkpointing=self.grad_ckpt,
                                    mixed_precision=self.mixed_precision, fast_step=self.fast_step)
        if self.augment_pool is not None:
            train = dataclasses.replace(train, augment_pool=self.augment_pool)
        return base.replace(runtime=runtime, train=train)


def make_variant(name: str, base_dtype: torch.dtype) -> Variant:
    """The :class:`Variant` called ``name`` on top of a ``base_dtype`` SDPA baseline."""
    if name in ("bf16", "fp16", "fp32"):
        return Variant(name, DTYPES[name])
    flags = {"baseline": {}, "attn-default": {"attention": "default"},
             "channels-last": {"channels_last": True}, "vae-tiling": {"vae_tiling": True},
             "cpu-offload": {"cpu_offload": True}, "grad-ckpt": {"grad_ckpt": True},
             "compile": {"compile": True, "compile_scope": "whole"},
             "no-autocast": {"mixed_precision": "no"}, "compile-regional": {"compile": True},
             "fast-step": {"fast_step": "on"},
             "augment-fresh": {"augment_pool": 0}}
    if name not in flags:
        raise ValueError(f"unknown variant {name!r}")
    return Variant(name, base_dtype, **flags[name])


def skip_reason(variant: Variant, section: str, device: torch.device, smoke: bool,
                explicit: bool) -> str | None:
    """Why ``variant`` is not run in ``section`` here (None: run it)."""
    if variant.name not in (PANEL_VARIANTS if section == "panel" else TRAIN_VARIANTS):
        return f"not a {section} variant"
    if variant.cpu_offload and device.type != "cuda":
        return "model CPU offload needs an accelerator"
    if variant.compile and smoke and not explicit:
        return "compile is off in --smoke (name it in --variants)"
    return None


_DIFFUSION_MODULES = ("text_encoder", "text_encoder_2", "unet", "vae")


@contextlib.contextmanager
def applied(components: Any, variant: Variant, product: bool = False) -> Iterator[None]:
    """Apply ``variant``'s dtype, attention, memory-format and checkpointing switches to the
    components in place, and undo them on exit.

    ``product=True`` (the app's generator and trainer): only what the app decides at load time
    outside ``apply_runtime_switches`` (the dtype cast) and what it has no switch for (the text
    encoders' eager attention); the app's own code applies the rest from the config.
    """
    if product:
        variant = dataclasses.replace(variant, channels_last=False, grad_ckpt=False)
    modules = {n: getattr(components, n) for n in _DIFFUSION_MODULES}
    old_dtype = components.unet.dtype
    processors = {n: modules[n].attn_processors for n in ("unet", "vae")}
    text_attn = {n: getattr(modules[n].config, "_attn_implementation", None)
                 for n in ("text_encoder", "text_encoder_2")}
    try:
        if variant.dtype != old_dtype:
            for m in modules.values():
                m.to(dtype=variant.dtype)
        if variant.attention == "default":
            from diffusers.models.attention_processor import AttnProcessor

            if not product:
                for n in ("unet", "vae"):
                    modules[n].set_attn_processor(AttnProcessor())
            for n in ("text_encoder", "text_encoder_2"):
                if hasattr(modules[n], "set_attn_implementation"):
                    modules[n].set_attn_implementation("eager")
        if variant.channels_last:
            for n in ("unet", "vae"):
                modules[n].to(memory_format=torch.channels_last)
        if variant.grad_ckpt:
            modules["unet"].enable_gradient_checkpointing()
        yield
    finally:
        if variant.grad_ckpt:
            modules["unet"].disable_gradient_checkpointing()
        if variant.channels_last:
            for n in ("unet", "vae"):
                modules[n].to(memory_format=torch.contiguous_format)
        if variant.attention == "default":
            if not product:
                for n in ("unet", "vae"):
                    modules[n].set_attn_processor(processors[n])
            for n, impl in text_attn.items():
                if impl and hasattr(modules[n], "set_attn_implementation"):
                    modules[n].set_attn_implementation(impl)
        if variant.dtype != old_dtype:
            for m in modules.values():
                m.to(dtype=old_dtype)


def compiled(module: nn.Module, mode: str | None) -> Callable[..., Any]:
    """``torch.compile(module, dynamic=False)`` (a wrapper; the module itself stays uncompiled).

    Static shapes: panels (CFG batch 2, 128x128 latents) and training steps (batch 1, 64x64) each
    get their own specialised graph instead of one dynamic-shape graph after the second shape."""
    return torch.compile(module, mode=None if mode in (None, "default") else mode, dynamic=False)


def rng_devices(device: torch.device) -> list[int]:
    """The CUDA device indices ``torch.random.fork_rng`` must save for ``device``."""
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


# ----------------------------------------------------------------------------- FLOPs

def _meta_modules(arch: str, components: Any | None) -> dict[str, nn.Module]:
    """Shape-only copies of the diffusion modules on the meta device."""
    if arch == "sdxl-random":
        from bench.arch import _sdxl_modules

        with torch.device("meta"):
            modules = _sdxl_modules(fr_vit=False)
    else:
        modules = {n: copy.deepcopy(getattr(components, n)).to("meta") for n in _DIFFUSION_MODULES}
    for m in modules.values():  # frozen, as in training: backward computes input gradients only
        m.requires_grad_(False)
    return modules


def _flops(fn: Callable[[], Any]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return float(counter.get_total_flops())


def unet_flops(unet: nn.Module, size: int, batch: int = 1, grad: bool = False,
               pooled_dim: int = 1280, vae_factor: int = 8) -> float:
    """FLOPs of one SDXL-style UNet call on ``batch`` latents of a ``size`` x ``size`` image
    (forward, or forward + backward into the text conditioning when ``grad``), on the UNet's
    device (meta: shapes only). The weights' ``requires_grad`` decides whether weight gradients
    are part of the backward."""
    dev = next(unet.parameters()).device
    with torch.device(dev):
        x = torch.randn(batch, unet.config.in_channels, size // vae_factor, size // vae_factor)
        ehs = torch.randn(batch, 77, unet.config.cross_attention_dim, requires_grad=grad)
        cond = dict(text_embeds=torch.randn(batch, pooled_dim), time_ids=torch.randn(batch, 6))
        t = torch.full((batch,), 500.0)

    def run() -> None:
        with torch.set_grad_enabled(grad):
            out = unet(x, t, ehs, added_cond_kwargs=cond).sample
            if grad:
                out.float().square().mean().backward()
    return _flops(run)


def count_flops(modules: dict[str, nn.Module], panel_size: int, panel_steps: int,
                train_size: int, cfg: bool = True) -> dict[str, float]:
    """FLOPs (multiply-add = 2) of each part of one panel and one training step.

    Runs on whatever device ``modules`` sit on (meta: shapes only). Keys end in ``_flop``.
    """
    te1, te2, unet, vae = (modules[n] for n in _DIFFUSION_MODULES)
    dev = next(unet.parameters()).device
    d1, d2 = te1.config.hidden_size, te2.config.hidden_size
    pooled = te2.config.projection_dim
    latent_ch, factor = unet.config.in_channels, 2 ** (len(vae.config.block_out_channels) - 1)
    batch = 2 if cfg else 1

    def unet_pass(size: int, b: int, grad: bool) -> float:
        return unet_flops(unet, size, b, grad, pooled_dim=pooled, vae_factor=factor)

    def text_pass(grad: bool) -> float:
        with torch.device(dev):
            ids = torch.randint(0, 49407, (1, 77))
        total = 0.0
        for te, d in ((te1, d1), (te2, d2)):
            emb = te.get_input_embeddings()
            with torch.device(dev):
                rows = torch.randn(1, 77, d, requires_grad=grad)
            original = emb.forward
            emb.forward = lambda _ids, _rows=rows: _rows  # type: ignore[method-assign]
            try:
                def run(te: nn.Module = te) -> None:
                    out = te(ids, output_hidden_states=True)
                    if grad:
                        out.hidden_states[-2].float().mean().backward()
                total += _flops(run)
            finally:
                emb.forward = original  # type: ignore[method-assign]
        return total

    def vae_pass(size: int, encode: bool) -> float:
        with torch.device(dev):
            if encode:
                img = torch.randn(1, 3, size, size)
                return _flops(lambda: vae.encode(img).latent_dist.mean)
            lat = torch.randn(1, latent_ch, size // factor, size // factor)
        return _flops(lambda: vae.decode(lat).sample)

    with torch.no_grad():
        unet_fwd_panel = unet_pass(panel_size, batch, grad=False)
        text_fwd = text_pass(grad=False)
        vae_decode = vae_pass(panel_size, encode=False)
        vae_encode = vae_pass(train_size, encode=True)
        unet_fwd_train = unet_pass(train_size, 1, grad=False)
    unet_fwdbwd_train = unet_pass(train_size, 1, grad=True)
    text_fwdbwd = text_pass(grad=True)
    panel = panel_steps * unet_fwd_panel + (2 if cfg else 1) * text_fwd + vae_decode
    step = vae_encode + text_fwdbwd + unet_fwdbwd_train
    return {"unet_fwd_panel_flop": unet_fwd_panel, "text_encoders_fwd_flop": text_fwd,
            "vae_decode_panel_flop": vae_decode, "panel_flop": panel,
            "vae_encode_train_flop": vae_encode, "unet_fwd_train_flop": unet_fwd_train,
            "unet_fwdbwd_train_flop": unet_fwdbwd_train, "text_encoders_fwdbwd_flop": text_fwdbwd,
            "train_step_flop": step}


# ----------------------------------------------------------------------------- panel

PANEL_CHARACTER = "Alice Smith"


def panel_identity(components: Any, seed: int) -> Any:
    """A random identity for :data:`PANEL_CHARACTER` with the encoders' widths (the panel binds
    it, as a real comic panel binds its cast)."""
    import types

    gen = torch.Generator("cpu").manual_seed(seed + 7)
    clip_l, clip_g = (torch.randn(2, getattr(components, n).get_input_embeddings().embedding_dim,
                                  generator=gen) * 0.02 for n in ("text_encoder", "text_encoder_2"))
    return types.SimpleNamespace(name=PANEL_CHARACTER, clip_l=clip_l, clip_g=clip_g)


def _restore_runtime(pipe: Any, components: Any, runtime: Any, offloaded: bool) -> None:
    """Undo a variant's pipeline switches: offload hooks off, then the base runtime's tiling,
    attention, channels-last and compile state (``apply_memory_switches`` follows it both ways)."""
    from pipelines.generation import apply_memory_switches

    if offloaded:
        pipe.remove_all_hooks()
        for n in _DIFFUSION_MODULES:
            getattr(components, n).to(components.device)
    apply_memory_switches(pipe, dataclasses.replace(runtime, cpu_offload=False), components.device)


def run_panel_variant(components: Any, variant: Variant, size: int, steps: int, guidance: float,
                      negative_prompt: str, repeats: int, warmup_steps: int,
                      compile_mode: str | None, seed: int) -> dict[str, Any]:
    """Time full panels of the app's :class:`~pipelines.generation.PanelGenerator` for one
    variant (its switches in the config, applied by the generator); returns a result row."""
    from pipelines.generation import ComicRequest, PanelGenerator, PanelSpec

    device = components.device
    config = variant.config(components.config, compile_mode)
    generator = None
    try:
        with applied(components, variant, product=True):
            run_components = dataclasses.replace(components, config=config, dtype=variant.dtype)
            generator = PanelGenerator(run_components)  # apply_memory_switches, as in the app
            if variant.cpu_offload and device.type == "cuda":
                common.synchronize(device)
                torch.cuda.empty_cache()
            cast = {PANEL_CHARACTER: panel_identity(components, seed)}
            request = ComicRequest(panels=(PanelSpec(PANEL_PROMPT, (PANEL_CHARACTER,)),), style="none",
                                   negative_prompt=negative_prompt, seed=seed, steps=steps,
                                   guidance_scale=guidance, width=size, height=size, candidates=1)

            def call(n_steps: int) -> Any:
                return [r.image for r in generator.generate(dataclasses.replace(request, steps=n_steps),
                                                            cast)]

            warm, _ = common.time_once(lambda: call(min(warmup_steps, steps)), device)
            weights = common.allocated_gib(device)
            common.reset_peak_memory(device)
            timing = common.time_repeats(lambda: call(steps), device, repeats=repeats, warmup=0)
            return {"seconds": timing.median, "min_s": min(timing.seconds),
                    "max_s": max(timing.seconds), "repeats": repeats, "warmup_s": warm,
                    "weights_gib": weights, "peak_gib": common.peak_memory_gib(device),
                    "impl": "PanelGenerator", "prompt_cache_hits": generator.prompt_cache.hits}
    finally:
        if generator is not None:
            _restore_runtime(generator.pipe, components, components.config.runtime,
                             offloaded=variant.cpu_offload and device.type == "cuda")


# ----------------------------------------------------------------------------- training

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
            warm, _ = common.time_once(lambda: trainer.run(warmup_steps), device) \
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
                    "train_augment_pool": pool}
    finally:
        apply_runtime_switches(components.unet, components.vae, components.config.runtime)
        if components.unet.is_gradient_checkpointing:
            components.unet.disable_gradient_checkpointing()


# ----------------------------------------------------------------------------- driver

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_sdxl_random", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=ARCH_CHOICES, default="sdxl-random",
                   help="sdxl-random: full-size SDXL with random weights; preset: --preset's models")
    p.add_argument("--preset", default="tiny", help="preset for --arch preset (default tiny)")
    p.add_argument("--device", default="auto", help="cuda | cpu | auto (default: cuda if present)")
    p.add_argument("--dtype", default="auto", choices=["auto", *DTYPES],
                   help="baseline dtype (auto: bfloat16 on CUDA, float32 on CPU)")
    p.add_argument("--only", default="panel,train", help=f"sections, comma list of {', '.join(SECTIONS)}")
    p.add_argument("--variants", default=None,
                   help=f"variants, comma list of {', '.join(ALL_VARIANTS)} (default all)")
    p.add_argument("--quick", action="store_true",
                   help="one timed panel per variant, 10 timed training steps")
    p.add_argument("--smoke", action="store_true",
                   help="tiny sizes and one repeat: checks every code path in seconds (CPU)")
    p.add_argument("--panel-size", type=int, default=None, help="panel side, pixels (sdxl-random: 1024)")
    p.add_argument("--panel-steps", type=int, default=None, help="sampling steps (sdxl-random: 30)")
    p.add_argument("--guidance", type=float, default=None, help="guidance scale (default: preset's, 8.5)")
    p.add_argument("--train-size", type=int, default=None, help="training resolution (sdxl-random: 512)")
    p.add_argument("--identity-steps", type=int, default=500, help="steps of one identity (projection)")
    p.add_argument("--train-steps", type=int, default=None, help="timed training steps per variant")
    p.add_argument("--train-warmup", type=int, default=None, help="untimed training steps first")
    p.add_argument("--repeats", type=int, default=None, help="timed panels per variant")
    p.add_argument("--train-impl", choices=["auto", "step", "trainer"], default="auto",
                   help="trainer: stableidentity.trainer.StableIdentityTrainer.step (the app's "
                        "own step); step: this file's faithful step; auto: trainer when it imports "
                        "and runs, else step")
    p.add_argument("--compile-mode", default="default",
                   help="torch.compile mode for the compile variant (default, reduce-overhead, "
                        "max-autotune-no-cudagraphs, ...)")
    p.add_argument("--peak-tflops", type=float, default=H200_BF16_TFLOPS,
                   help="matrix rate for the floor column, TFLOP/s (790: H200 bf16 measured)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", default=None, help="output JSON (default bench/results/sdxl_random-*.json)")
    p.epilog = "Also: --summarize FILE.json [...] prints the tables and the targets of saved runs."
    return p.parse_args(argv)


@dataclass(frozen=True)
class Plan:
    """Resolved sizes and counts of one run."""

    sections: tuple[str, ...]
    variants: tuple[str, ...]
    explicit_variants: bool
    device: torch.device
    dtype: torch.dtype
    panel_size: int
    panel_steps: int
    guidance: float
    negative_prompt: str
    train_size: int
    repeats: int
    train_steps: int
    train_warmup: int
    warmup_steps: int


def make_plan(args: argparse.Namespace) -> Plan:
    """Resolve defaults from the arch, the preset and ``--quick`` / ``--smoke``."""
    from configs import load_config

    sections = tuple(common.parse_choices(args.only, SECTIONS, "--only"))
    variants = tuple(common.parse_choices(args.variants, ALL_VARIANTS, "--variants")) \
        if args.variants else ALL_VARIANTS
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    dtype = DTYPES[args.dtype] if args.dtype != "auto" else \
        (torch.bfloat16 if device.type == "cuda" else torch.float32)
    cfg = load_config("sdxl" if args.arch == "sdxl-random" else args.preset)
    gen = cfg.generation
    panel_size = args.panel_size or (1024 if args.arch == "sdxl-random" else gen.width)
    panel_steps = args.panel_steps or (30 if args.arch == "sdxl-random" else gen.steps)
    train_size = args.train_size or (512 if args.arch == "sdxl-random" else cfg.train.resolution)
    repeats = args.repeats or (1 if (args.quick or args.smoke) else 3)
    train_steps = args.train_steps or (2 if args.smoke else 10 if args.quick else 20)
    train_warmup = args.train_warmup if args.train_warmup is not None else (1 if args.smoke else 3)
    return Plan(sections=sections, variants=variants, explicit_variants=bool(args.variants),
                device=device, dtype=dtype, panel_size=panel_size, panel_steps=panel_steps,
                guidance=args.guidance if args.guidance is not None else gen.guidance_scale,
                negative_prompt=gen.negative_prompt, train_size=train_size, repeats=repeats,
                train_steps=train_steps, train_warmup=train_warmup,
                warmup_steps=1 if args.smoke else 3)


def _default_json(args: argparse.Namespace) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    arch = args.arch if args.arch != "preset" else f"preset-{args.preset}"
    return Path(__file__).resolve().parent / "results" / f"sdxl_random-{arch}-{stamp}.json"


PANEL_COLUMNS = ("section", "variant", "dtype", "status", "seconds", "warmup_s", "peak_gib",
                 "floor_s", "floor_frac")
TRAIN_COLUMNS = ("section", "variant", "dtype", "status", "step_s", "identity_s", "peak_gib",
                 "floor_s", "floor_frac")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the selected sections and variants; returns (and writes) the results dict."""
    from diffusers.utils import logging as diffusers_logging

    verbosity = diffusers_logging.get_verbosity()
    threads = torch.get_num_threads()
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        diffusers_logging.set_verbosity_error()  # dtype-cast notices on every variant switch
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NaN casts of random-weight images, deprecations
            return _run(args)
    finally:
        diffusers_logging.set_verbosity(verbosity)
        torch.set_num_threads(threads)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    plan = make_plan(args)
    out = Path(args.json) if args.json else _default_json(args)
    settings = {k: v for k, v in vars(args).items()} | {
        "resolved": {k: (str(v) if isinstance(v, (torch.device, torch.dtype)) else v)
                     for k, v in dataclasses.asdict(plan).items()}}
    results = common.Results(bench="sdxl_random", machine=common.machine_info(plan.device),
                             settings=settings)
    results.machine["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
    results.machine["tf32_cudnn"] = torch.backends.cudnn.allow_tf32

    def save() -> None:
        common.write_json(out, results.as_dict())

    def emit(row: dict[str, Any]) -> None:
        results.rows.append(row)
        save()
        cols = PANEL_COLUMNS if row["section"] == "panel" else TRAIN_COLUMNS
        print(" | ".join(f"{c}={common.format_value(row.get(c))}" for c in cols), flush=True)

    components = None
    if "panel" in plan.sections or "train" in plan.sections or args.arch == "preset":
        build_s, components = common.time_once(
            lambda: build_arch(args.arch, plan.device, plan.dtype, preset=args.preset,
                               seed=args.seed), plan.device)
        results.settings["build_s"] = build_s
        results.settings["weights_gib_after_build"] = common.allocated_gib(plan.device)
        print(f"built {args.arch} on {plan.device} in {plan.dtype}: {build_s:.2f} s", flush=True)

    floors: dict[str, float] = {}
    if "flops" in plan.sections:
        t0 = time.perf_counter()
        flops = count_flops(_meta_modules(args.arch, components), plan.panel_size, plan.panel_steps,
                            plan.train_size)
        peak = args.peak_tflops * 1e12
        floors = {"panel": flops["panel_flop"] / peak, "train": flops["train_step_flop"] / peak}
        for part, value in flops.items():
            results.add(section="flops", part=part.removesuffix("_flop"), tflop=value / 1e12,
                        floor_s=value / peak, status="ok")
        results.add(section="flops", part="identity", tflop=flops["train_step_flop"] * args.identity_steps / 1e12,
                    floor_s=floors["train"] * args.identity_steps, status="ok")
        results.settings["flops_count_s"] = time.perf_counter() - t0
        save()

    trainer_cls = None
    if "train" in plan.sections and args.train_impl in ("auto", "trainer"):
        trainer_cls, trainer_why = real_trainer()
        if trainer_cls is None and args.train_impl == "trainer":
            raise SystemExit(f"error: --train-impl trainer: {trainer_why}")
        results.notes.append(f"train: {trainer_why}" if trainer_cls else
                             f"train: faithful step ({trainer_why})")
    elif "train" in plan.sections:
        results.notes.append("train: faithful step (--train-impl step)")
    for section in ("panel", "train"):
        if section not in plan.sections:
            continue
        for name in plan.variants:
            variant = make_variant(name, plan.dtype)
            if name != "baseline" and name in ("bf16", "fp16", "fp32") and variant.dtype == plan.dtype:
                continue  # the baseline already is this dtype
            why = skip_reason(variant, section, plan.device, args.smoke, plan.explicit_variants)
            if why == f"not a {section} variant":
                continue
            row: dict[str, Any] = {"section": section, **variant.describe()}
            if why:
                emit(row | {"status": f"skipped: {why}"})
                continue
            if section == "train" and trainer_cls is None and name in TRAINER_ONLY:
                emit(row | {"status": "skipped: only the app's trainer has this switch"})
                continue
            try:
                if section == "panel":
                    row |= {"size": plan.panel_size, "steps": plan.panel_steps,
                            "guidance": plan.guidance}
                    row |= run_panel_variant(components, variant, plan.panel_size, plan.panel_steps,
                                             plan.guidance, plan.negative_prompt, plan.repeats,
                                             plan.warmup_steps, args.compile_mode, args.seed)
                    row["floor_s"] = floors.get("panel")
                    measured = row["seconds"]
                else:
                    row |= {"resolution": plan.train_size}
                    if trainer_cls is not None:
                        try:
                            row |= run_trainer_variant(trainer_cls, components, variant,
                                                       plan.train_size, plan.train_steps,
                                                       plan.train_warmup, args.identity_steps,
                                                       args.compile_mode, args.seed)
                            row["train_impl"] = "trainer"
                        except Exception as exc:  # noqa: BLE001 - fall back, say why
                            if args.train_impl == "trainer" or name in TRAINER_ONLY:
                                raise
                            results.notes.append(f"train {name}: StableIdentityTrainer failed, "
                                                 f"faithful step used: {type(exc).__name__}: {exc}")
                    if "step_s" not in row:
                        row |= run_train_variant(components, variant, plan.train_size,
                                                 plan.train_steps, plan.train_warmup,
                                                 args.identity_steps, args.compile_mode, args.seed)
                        row["train_impl"] = "faithful-step"
                    row["floor_s"] = floors.get("train")
                    measured = row["step_s"]
                if row.get("floor_s") and measured:
                    row["floor_frac"] = row["floor_s"] / measured
                row["status"] = "ok"
            except Exception as exc:  # noqa: BLE001 - one failed variant must not stop the run
                row["status"] = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                row["traceback"] = traceback.format_exc()[-2000:]
                if plan.device.type == "cuda":
                    torch.cuda.empty_cache()
            emit(row)
    results.settings["peak_rss_gib"] = common.peak_rss_gib()  # host memory of this process
    save()
    print(f"\nwrote {out}")
    print(summary_table(results.as_dict()))
    return results.as_dict()


def summary_table(result: dict[str, Any]) -> str:
    """The rows of a results dict as text tables, one per section."""
    parts = []
    rows = result["rows"]
    flops = [r for r in rows if r["section"] == "flops"]
    if flops:
        parts.append(common.format_table(flops, ("part", "tflop", "floor_s")))
    for section, cols in (("panel", PANEL_COLUMNS), ("train", TRAIN_COLUMNS)):
        sel = [r for r in rows if r["section"] == section]
        if sel:
            parts.append(common.format_table(sel, cols[1:]))
    return "\n\n".join(parts)


# Targets (docs/PERFORMANCE.md): on an H200, seconds and decimal gigabytes.
TARGETS = {"panel_s": 2.0, "identity_s": 20.0, "peak_gb": 12.0}


def summarize(paths: list[str]) -> str:
    """Tables of the rows in result files, then each target against the baseline and the best
    measured variant (the best is the fastest 'ok' row; its peak memory is shown with it)."""
    import json

    rows: list[dict[str, Any]] = []
    machine: dict[str, Any] = {}
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"skipping {path}: {exc}", file=sys.stderr)
            continue
        machine = machine or data.get("machine", {})
        arch = data.get("settings", {}).get("arch")
        rows.extend(r | {"arch": arch} for r in data.get("rows", []))
    lines = [f"machine: {machine.get('gpu') or machine.get('cpu')} | torch {machine.get('torch')} | "
             f"{machine.get('date_utc')} UTC", summary_table({"rows": rows})]

    def ok(section: str, key: str) -> list[dict[str, Any]]:
        return [r for r in rows if r.get("section") == section and r.get("status") == "ok"
                and r.get(key) is not None]

    gb = common.GIB / 1e9
    for section, key, target, label in (("panel", "seconds", TARGETS["panel_s"], "panel s"),
                                        ("train", "identity_s", TARGETS["identity_s"], "identity s")):
        sel = ok(section, key)
        if not sel:
            lines.append(f"{label}: not measured")
            continue
        base = next((r for r in sel if r["variant"] == "baseline"), sel[0])
        best = min(sel, key=lambda r: r[key])
        for tag, r in (("baseline", base), ("best", best)):
            peak = r.get("peak_gib")
            peak_txt = f"{peak * gb:.2f} GB (target <= {TARGETS['peak_gb']:.0f})" if peak else "-"
            verdict = ("MEETS" if r[key] <= target else "MISSES") if r.get("arch") == "sdxl-random" \
                else f"n/a for arch {r.get('arch')}"
            lines.append(f"{label} {tag} [{r['variant']}, {r.get('dtype')}]: {r[key]:.3f} "
                         f"(target <= {target:g}: {verdict}); peak {peak_txt}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--summarize"]:
        print(summarize(argv[1:]))
        return 0
    args = parse_args(argv)
    try:
        result = run(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bad = [r for r in result["rows"] if str(r.get("status", "")).startswith("error")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
