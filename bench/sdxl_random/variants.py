"""Benchmark variants: the baseline with one of the app's config switches changed (see
:mod:`bench.bench_sdxl_random` for the list and the key each maps to)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

SECTIONS = ("flops", "panel", "train", "profile")
PANEL_VARIANTS = ("baseline", "bf16", "fp16", "fp32", "attn-default", "channels-last",
                  "vae-tiling", "cpu-offload", "compile", "compile-regional")
TRAIN_VARIANTS = ("baseline", "bf16", "fp16", "fp32", "attn-default", "channels-last",
                  "grad-ckpt", "no-autocast", "augment-fresh", "compile", "fast-step")
#: train variants that only the app's trainer has (the faithful step has no such switch)
TRAINER_ONLY = ("no-autocast", "augment-fresh", "fast-step")
#: variants of the profile section: the eager step against the fast step
PROFILE_VARIANTS = ("baseline", "fast-step")
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
    names = {"panel": PANEL_VARIANTS, "profile": PROFILE_VARIANTS}.get(section, TRAIN_VARIANTS)
    if variant.name not in names:
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
