"""The ``profile`` section: ``torch.profiler`` over a few of the app's training steps.

Where a step's time goes (issue 19): per step, the GPU's busy time (the union of kernel
intervals, so overlapping kernels count once), how many kernels it launched, the host's wall time
and the CPU time spent inside operators (dispatch), how many ``aten::to`` dtype conversions ran,
and the kernels that took the most GPU time. One row per variant (``baseline``: the eager step;
``fast-step``: the static-buffer step, a CUDA-graph replay on CUDA). On a CPU the GPU columns are
None and the rest still says where the host time goes.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import torch

from bench import common
from bench.sdxl_random.train import synthetic_face
from bench.sdxl_random.variants import Variant, applied

#: kernels listed per row
TOP_KERNELS = 8


def _busy_us(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of ``(start, end)`` intervals (microseconds)."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


def profile_summary(events: Iterable[Any], steps: int, wall_s: float) -> dict[str, Any]:
    """Per-step numbers from ``torch.profiler`` events (``prof.events()``) of ``steps`` steps
    that took ``wall_s`` seconds on the host."""
    kernels: list[tuple[float, float]] = []
    by_name: dict[str, float] = defaultdict(float)
    cpu_us = 0.0
    conversions = 0
    for event in events:
        if event.device_type == torch.autograd.DeviceType.CUDA:
            start, end = float(event.time_range.start), float(event.time_range.end)
            kernels.append((start, end))
            by_name[event.name] += end - start
        else:
            cpu_us += float(event.self_cpu_time_total)
            conversions += event.name == "aten::to"
    top = sorted(by_name.items(), key=lambda kv: -kv[1])[:TOP_KERNELS]
    on_gpu = bool(kernels)
    return {"profiled_steps": steps, "wall_ms_per_step": wall_s * 1e3 / steps,
            "cpu_op_ms_per_step": cpu_us / 1e3 / steps,
            "gpu_busy_ms_per_step": _busy_us(kernels) / 1e3 / steps if on_gpu else None,
            "kernels_per_step": len(kernels) / steps if on_gpu else None,
            "aten_to_per_step": conversions / steps,
            "top_kernels": [[name[:120], us / 1e3 / steps] for name, us in top]}


def run_profile_variant(trainer_cls: type, components: Any, variant: Variant, resolution: int,
                        steps: int, warmup_steps: int, seed: int) -> dict[str, Any]:
    """Profile ``steps`` steps of the app's ``StableIdentityTrainer.run`` for one variant after
    the augmentation pool is filled and ``warmup_steps`` steps ran (capture and compile are not
    in the profile)."""
    from models.loading import apply_runtime_switches

    device = components.device
    config = variant.config(components.config)
    config = config.replace(train=dataclasses.replace(config.train, resolution=resolution, seed=seed))
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    try:
        with applied(components, variant, product=True):
            apply_runtime_switches(components.unet, components.vae, config.runtime, device)
            run_components = dataclasses.replace(components, config=config, dtype=variant.dtype)
            aligned, masks = synthetic_face(seed)
            trainer = trainer_cls(run_components, aligned, seed=seed, masks=masks)
            for _ in range(getattr(trainer, "augment_pool", None) or 0):
                trainer.next_view()
            warm, _ = common.time_once(lambda: trainer.run(max(1, warmup_steps)), device)
            common.synchronize(device)
            with torch.profiler.profile(activities=activities) as prof:
                start = time.perf_counter()
                trainer.run(steps)
                common.synchronize(device)
                wall = time.perf_counter() - start
            return {"warmup_s": warm, **profile_summary(prof.events(), steps, wall)}
    finally:
        apply_runtime_switches(components.unet, components.vae, components.config.runtime, device)
        if components.unet.is_gradient_checkpointing:
            components.unet.disable_gradient_checkpointing()


__all__ = ["TOP_KERNELS", "profile_summary", "run_profile_variant"]
