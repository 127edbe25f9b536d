"""Benchmark one panel: our PanelGenerator vs diffusers' vanilla StableDiffusionXLPipeline.

Both run on the same loaded components with the same prompt, negative prompt, seed, steps,
guidance and size; calls alternate (vanilla, ours, ours + identity, vanilla, ...) so drift in
machine load hits every side alike. The overhead we add is binding (tokenizer copy lookup,
row overlay, lock), validation, prompt composition, a fresh scheduler per call and building
PanelResults; the goal is ours / vanilla <= 1.02 (median).

Several people in one panel: a two-identity panel is drawn plain and with regional attention
(same seed, alternating); "regional / plain" is the median of their paired ratios (goal <= 1.05 on
the tiny preset). The face pass is timed on its own with explicit boxes (one and two faces; tiny
panels hold no detectable face), reported as seconds per face and as a share of one panel.

    python bench/bench_panel.py --preset tiny --iters 20 --json bench/results/tiny.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROMPT = "Ada Lovelace reads a letter by the window"
FREE_PROMPT = "a woman reads a letter by the window"
PAIR_PROMPT = "Ada Lovelace and Alan Turing read a letter by the window"
PAIR = ("Ada Lovelace", "Alan Turing")


@dataclass(frozen=True)
class BenchIdentity:
    name: str
    clip_l: object
    clip_g: object


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", help="config preset (default tiny)")
    parser.add_argument("--config", help="a preset YAML file (wins over --preset)")
    parser.add_argument("--iters", type=int, default=20, help="timed calls per side")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per side first")
    parser.add_argument("--steps", type=int, help="sampling steps (default: the preset's)")
    parser.add_argument("--size", type=int, help="panel width = height in pixels (default: preset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    parser.add_argument("--compile", choices=["auto", "on", "off"], default=None,
                        help="runtime.compile for this run (default: the preset's)")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser.parse_args(argv)


def summary(times: list[float]) -> dict[str, float]:
    return dict(median_s=statistics.median(times), mean_s=statistics.fmean(times), min_s=min(times),
                stdev_s=statistics.stdev(times) if len(times) > 1 else 0.0)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    from diffusers import StableDiffusionXLPipeline

    from configs import load_config
    from pipelines.generation import ComicRequest, PanelSpec, panel_generator
    from models.loading import load_components

    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(preset=args.preset, path=args.config)
    if args.compile is not None:
        import dataclasses

        config = config.replace(runtime=dataclasses.replace(config.runtime, compile=args.compile))
    gen = config.generation
    steps = args.steps or gen.steps
    size = args.size or gen.width
    components = load_components(config)
    ours = panel_generator(components)
    vanilla = StableDiffusionXLPipeline(**components.pipeline_parts())
    vanilla.set_progress_bar_config(disable=True)
    d1 = components.text_encoder.get_input_embeddings().embedding_dim
    d2 = components.text_encoder_2.get_input_embeddings().embedding_dim
    g = torch.Generator().manual_seed(1)
    ada = BenchIdentity("Ada Lovelace", torch.randn(2, d1, generator=g) * 0.05,
                        torch.randn(2, d2, generator=g) * 0.05)
    alan = BenchIdentity("Alan Turing", torch.randn(2, d1, generator=g) * 0.05,
                         torch.randn(2, d2, generator=g) * 0.05)
    cast = {"Ada Lovelace": ada, "Alan Turing": alan}
    settings = dict(style="none", seed=args.seed, steps=steps, width=size, height=size, candidates=1,
                    face_pass=False)
    free = ComicRequest(panels=(PanelSpec(FREE_PROMPT),), **settings)
    bound = ComicRequest(panels=(PanelSpec(PROMPT, ("Ada Lovelace",)),), **settings)
    pair_plain = ComicRequest(panels=(PanelSpec(PAIR_PROMPT, PAIR),), regional=False, **settings)
    pair_regional = ComicRequest(panels=(PanelSpec(PAIR_PROMPT, PAIR),), regional=True, **settings)

    def sync() -> None:
        if components.device.type == "cuda":
            torch.cuda.synchronize()

    def run_vanilla():
        return vanilla(FREE_PROMPT, negative_prompt=gen.negative_prompt, num_inference_steps=steps,
                       guidance_scale=gen.guidance_scale, width=size, height=size,
                       generator=torch.Generator().manual_seed(args.seed)).images[0]

    def run_ours():
        return next(ours.generate(free)).image

    def run_ours_identity():
        return next(ours.generate(bound, {"Ada Lovelace": ada})).image

    sides = {"vanilla SDXL pipeline": run_vanilla, "ours (no identity)": run_ours,
             "ours (1 identity)": run_ours_identity,
             "ours (2 identities, plain)": lambda: next(ours.generate(pair_plain, cast)).image,
             "ours (2 identities, regional)": lambda: next(ours.generate(pair_regional, cast)).image}
    times: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(args.warmup + args.iters):
        for name, fn in sides.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    import numpy as np

    same = np.array_equal(np.asarray(run_vanilla()), np.asarray(run_ours()))
    results = {name: summary(t) for name, t in times.items()}
    base = times["vanilla SDXL pipeline"]
    for name, row in results.items():
        # per-iteration ratios of back-to-back calls: robust to load drift on a shared machine
        row["ratio_vs_vanilla"] = statistics.median(a / b for a, b in zip(times[name], base))
        row["ratio_of_min"] = row["min_s"] / min(base)
    print(f"preset {config.name}, device {components.device}, dtype {str(components.dtype).split('.')[-1]}, "
          f"{size}x{size}, {steps} steps, {args.iters} iters (+{args.warmup} warm-up), "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'side':26s} {'median s':>10s} {'mean s':>10s} {'min s':>10s} {'ratio':>7s} {'min ratio':>9s}")
    for name, row in results.items():
        print(f"{name:26s} {row['median_s']:10.4f} {row['mean_s']:10.4f} {row['min_s']:10.4f} "
              f"{row['ratio_vs_vanilla']:7.3f} {row['ratio_of_min']:9.3f}")
    ratio = results["ours (no identity)"]["ratio_vs_vanilla"]
    print(f"ratio ours/vanilla (median of paired ratios): {ratio:.3f} (goal <= 1.02); "
          f"identical pixels: {same}")
    regional_ratio = statistics.median(a / b for a, b in zip(times["ours (2 identities, regional)"],
                                                             times["ours (2 identities, plain)"]))
    print(f"regional attention / plain, 2 identities (median of paired ratios): {regional_ratio:.3f} "
          f"(goal <= 1.05 on tiny)")
    face = face_pass_cost(ours, pair_regional, cast, size, max(3, args.iters // 4), sync)
    panel_s = results["ours (2 identities, regional)"]["median_s"]
    print(f"face pass: {face['per_face_s']:.4f} s per face (median of 1- and 2-face runs), "
          f"{face['per_face_s'] / panel_s:.2f} x one panel; crop upscaled to "
          f"{config.generation.face_pass_size} px, strength {config.generation.face_pass_strength}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dict(
            preset=config.name, device=str(components.device), dtype=str(components.dtype),
            size=size, steps=steps, iters=args.iters, warmup=args.warmup,
            threads=torch.get_num_threads(), machine=platform.platform(), identical_pixels=same,
            regional_vs_plain=regional_ratio, face_pass=face, results=results), indent=2) + "\n")
    return 0


def face_pass_cost(generator, request, cast, size: int, iters: int, sync) -> dict[str, float]:
    """Seconds per redrawn face: the face pass on a drawn panel with explicit boxes (one face,
    then two faces), median over ``iters`` runs each, divided by the face count."""
    from pipelines.face_pass import FaceJob

    resolved, (panel,) = generator.prepare(request, cast)
    image = generator.draw(resolved, panel)[0].image
    side = size / 4
    jobs = [FaceJob(0, PAIR[0], (size * 0.6, side, size * 0.6 + side, 2 * side)),
            FaceJob(1, PAIR[1], (size * 0.15, side, size * 0.15 + side, 2 * side))]
    per_face = {}
    for count in (1, 2):
        runs = []
        for _ in range(iters):
            sync()
            start = time.perf_counter()
            generator.face_pass(resolved, panel, image, 0, jobs=jobs[:count])
            sync()
            runs.append((time.perf_counter() - start) / count)
        per_face[f"{count}_face_s_per_face"] = statistics.median(runs)
    per_face["per_face_s"] = statistics.median(per_face.values())
    return per_face


if __name__ == "__main__":
    sys.exit(main())
