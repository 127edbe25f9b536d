"""The ``panel`` section: full panels through the app's own PanelGenerator, one variant each."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from bench import common
from bench.sdxl_random.variants import (
    _DIFFUSION_MODULES,
    PANEL_PROMPT,
    Variant,
    applied,
)

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
