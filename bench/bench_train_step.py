"""Benchmark: StableIdentity training steps vs bare UNet forward + backward passes.

Both run on the same kind of inputs (the trainer's latents, timestep, noise and SDXL conditioning).
The bare step differentiates the UNet with respect to its noisy-latent input (its weights are
frozen, as in training), so it does the same kind of backward pass without the text encoders, the
MLPs, the masked two-phase loss, the augmentation and VAE encoding, or the optimiser. Steps of the
two kinds alternate in one run, so drift (clock, other processes) hits both alike.

``--iters`` steps of each kind are timed: by default 450, one whole identity, so the first
``AUGMENT_POOL`` steps (fresh augmentations, VAE-encoded ``PREFETCH`` at a time) and the later ones
(pooled augmentations) are both counted in their real proportion; the table also shows the two
phases apart. ``--flops`` adds FLOP counts (``torch.utils.flop_counter``) of each part of a step,
which do not depend on the machine. Goal: ``ours / bare <= 1.15``.

Usage::

    python bench/bench_train_step.py --preset tiny --iters 450 --flops \
        --json bench/results/train_step_tiny.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

GOAL = 1.15


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _stats(times_s: list[float]) -> dict[str, float]:
    if not times_s:
        return {}
    ms = sorted(t * 1e3 for t in times_s)
    return {"n": len(ms), "mean_ms": statistics.fmean(ms), "median_ms": statistics.median(ms),
            "p90_ms": ms[min(len(ms) - 1, int(0.9 * len(ms)))], "min_ms": ms[0]}


def _flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def run(preset: str, iters: int, warmup: int, threads: int | None, augment_pool: int | None,
        count_flops: bool) -> dict:
    from skimage import data

    from configs import load_config
    from models.loading import load_components
    from faces.face_prep import prepare_face
    from stableidentity.loss import add_noise
    from stableidentity.masks import face_masks
    from stableidentity.trainer import PREFETCH, StableIdentityTrainer

    if threads:
        torch.set_num_threads(threads)
    config = load_config(preset)
    components = load_components(config)
    device = components.device
    aligned = prepare_face(data.astronaut(), components.face_detector)
    masks = face_masks(components.face_parser, aligned.image, aligned.landmarks)

    def new_trainer() -> StableIdentityTrainer:
        return StableIdentityTrainer(components, aligned, seed=0, masks=masks, augment_pool=augment_pool)

    # the bare step's inputs: a training sample, timestep, noise and conditioning from a trainer
    probe = new_trainer()
    sample = probe.next_sample()
    timesteps = probe.draw_timesteps()
    noise = probe.draw_noise(sample.latents)
    with torch.no_grad():
        cond = probe.conditioning(0)
    z_t = add_noise(sample.latents, noise, timesteps, probe.alphas_cumprod)
    unet = components.unet

    def bare_step() -> None:
        x = z_t.detach().to(unet.dtype).requires_grad_(True)
        with probe.autocast():
            out = unet(x, timesteps, **cond.unet_kwargs()).sample
        F.mse_loss(out.float(), noise).backward()

    for _ in range(warmup):
        probe.step()
        bare_step()
    trainer = new_trainer()  # timed from an empty augmentation pool, like a real identity
    ours, bare = [], []
    for _ in range(iters):
        _sync(device)
        start = time.perf_counter()
        trainer.step()
        _sync(device)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        bare_step()
        _sync(device)
        bare.append(time.perf_counter() - start)
    fresh = iters if augment_pool is None else min(iters, augment_pool)
    ours_s, bare_s = _stats(ours), _stats(bare)
    result = {
        "preset": preset, "device": str(device), "dtype": str(components.dtype).removeprefix("torch."),
        "resolution": config.train.resolution, "iters": iters, "warmup": warmup,
        "augment_pool": augment_pool, "prefetch": PREFETCH, "fresh_augmentation_steps": fresh,
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "ours": ours_s, "bare_unet_fwd_bwd": bare_s,
        "ours_fresh_phase": _stats(ours[:fresh]), "ours_pooled_phase": _stats(ours[fresh:]),
        "ratio_mean": ours_s["mean_ms"] / bare_s["mean_ms"],
        "ratio_median": ours_s["median_ms"] / bare_s["median_ms"], "goal": GOAL,
    }
    if count_flops:
        s = trainer.next_sample()
        t = trainer.draw_timesteps()
        n = trainer.draw_noise(s.latents)

        def ours_no_vae() -> None:
            trainer.step(sample=s, timesteps=t, noise=n, template_index=0)

        def conditioning_fwd_bwd() -> None:
            c = trainer.conditioning(0)
            (c.prompt_embeds.float().sum() + c.text_embeds.float().sum()).backward()
            trainer.optimizer.zero_grad(set_to_none=True)

        flops = {"bare_unet_fwd_bwd": _flops(bare_step), "ours_step_without_vae": _flops(ours_no_vae),
                 "text_encoders_fwd_bwd": _flops(conditioning_fwd_bwd),
                 "vae_encode_per_view": _flops(lambda: trainer.encode_views(PREFETCH)) // PREFETCH}
        per_step_vae = flops["vae_encode_per_view"] * fresh / iters
        flops["ours_step_mean"] = int(flops["ours_step_without_vae"] + per_step_vae)
        result["flops"] = flops
        result["flop_ratio"] = flops["ours_step_mean"] / flops["bare_unet_fwd_bwd"]
        result["flop_ratio_fresh_every_step"] = \
            (flops["ours_step_without_vae"] + flops["vae_encode_per_view"]) / flops["bare_unet_fwd_bwd"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", help="config preset (default: tiny)")
    parser.add_argument("--iters", type=int, default=450,
                        help="timed steps of each kind (default 450: one identity)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps of each kind first")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--augment-pool", default="default",
                        help="distinct augmentations per identity: a number, 'none' (fresh every "
                             "step) or 'default' (stableidentity.trainer.AUGMENT_POOL)")
    parser.add_argument("--flops", action="store_true", help="also count FLOPs of each part")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    from stableidentity.trainer import AUGMENT_POOL

    choice = args.augment_pool.lower()
    pool = {"default": AUGMENT_POOL, "none": None}[choice] if choice in ("default", "none") \
        else int(choice)
    result = run(args.preset, max(1, args.iters), max(0, args.warmup), args.threads, pool, args.flops)
    print(f"preset={result['preset']} device={result['device']} dtype={result['dtype']} "
          f"resolution={result['resolution']} iters={result['iters']} threads={result['torch_threads']} "
          f"augment_pool={result['augment_pool']}")
    print(f"{'':28s}{'steps':>6s}{'mean ms':>10s}{'median ms':>11s}{'p90 ms':>9s}{'min ms':>9s}")
    rows = [("StableIdentity step", result["ours"]),
            ("  fresh-augmentation steps", result["ours_fresh_phase"]),
            ("  pooled-augmentation steps", result["ours_pooled_phase"]),
            ("bare UNet fwd+bwd", result["bare_unet_fwd_bwd"])]
    for name, s in rows:
        if s:
            print(f"{name:28s}{s['n']:6d}{s['mean_ms']:10.2f}{s['median_ms']:11.2f}{s['p90_ms']:9.2f}"
                  f"{s['min_ms']:9.2f}")
    verdict = "meets" if result["ratio_mean"] <= GOAL else "misses"
    print(f"time ratio ours/bare: mean {result['ratio_mean']:.3f}, median {result['ratio_median']:.3f}; "
          f"goal <= {GOAL} ({verdict})")
    if "flops" in result:
        for key, value in result["flops"].items():
            print(f"  {key:26s}{value / 1e9:12.4f} GFLOP")
        print(f"FLOP ratio ours/bare: {result['flop_ratio']:.3f} "
              f"(fresh augmentation every step: {result['flop_ratio_fresh_every_step']:.3f})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
