"""Per-character prompts vs the earlier shared-prompt regional attention: panel time, side by side.

One run, one set of components, two generators: ``shared`` is the earlier regional code
(``generation.character_prompts: false``: one prompt, signal words masked by a logit bias) and
``per-character`` the new path (a background prompt and one prompt per character, one sequence each,
blended per place in every cross-attention layer). Calls alternate (shared, per-character,
shared, ...) with the same panel and seed, so load drift hits both alike; each ratio is the median
of the per-iteration ratios of back-to-back calls.

Two timings per cast size (2 and 3 characters):

* ``warm``: the encoded prompts come from the generator's prompt cache (a redraw, another
  candidate count): the ratio is the cost of the extra attention per cross-attention layer;
* ``cold``: both generators' prompt caches are cleared before every call, so each call also runs
  the text encoders: one batched pass of 1 + characters sequences instead of one sequence.

Goal: per-character / shared <= 1.10 for two characters (each extra prompt is one more
text-encoder pass and one more attention per layer).

    python bench/bench_character_prompts.py --preset tiny --iters 20 --json out/character_prompts.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_panel import BenchIdentity  # noqa: E402

CASTS: dict[int, tuple[str, tuple[str, ...]]] = {
    2: ("Ada Lovelace in a green dress and Alan Turing read a letter by the window",
        ("Ada Lovelace", "Alan Turing")),
    3: ("Ada Lovelace, Alan Turing and Grace Hopper read a letter by the window",
        ("Ada Lovelace", "Alan Turing", "Grace Hopper")),
}
GOAL = 1.10


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", help="config preset (default tiny)")
    parser.add_argument("--config", help="a preset YAML file (wins over --preset)")
    parser.add_argument("--iters", type=int, default=20, help="timed calls per side and case")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per side first")
    parser.add_argument("--steps", type=int, help="sampling steps (default: the preset's)")
    parser.add_argument("--size", type=int, help="panel width = height in pixels (default: preset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser.parse_args(argv)


def measure(args: argparse.Namespace) -> dict:
    """Time both paths for every cast size, warm and cold; returns the results dict."""
    import torch

    from configs import load_config
    from models.loading import load_components
    from pipelines.generation import ComicRequest, PanelGenerator, PanelSpec

    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(preset=args.preset, path=args.config)
    gen = config.generation
    steps, size = args.steps or gen.steps, args.size or gen.width
    components = load_components(config)

    def generator(character_prompts: bool) -> PanelGenerator:
        generation = dataclasses.replace(gen, character_prompts=character_prompts)
        return PanelGenerator(dataclasses.replace(components, config=config.replace(generation=generation)))

    sides = {"shared": generator(False), "per-character": generator(True)}
    d1 = components.text_encoder.get_input_embeddings().embedding_dim
    d2 = components.text_encoder_2.get_input_embeddings().embedding_dim
    g = torch.Generator().manual_seed(1)
    names = {n for _, cast in CASTS.values() for n in cast}
    identities = {n: BenchIdentity(n, torch.randn(2, d1, generator=g) * 0.05, torch.randn(2, d2, generator=g) * 0.05)
                  for n in sorted(names)}

    def sync() -> None:
        if components.device.type == "cuda":
            torch.cuda.synchronize()

    cases = {}
    for count, (text, cast) in CASTS.items():
        request = ComicRequest(panels=(PanelSpec(text, cast),), style="none", seed=args.seed, steps=steps,
                               width=size, height=size, candidates=1, face_pass=False, regional=True)
        for mode in ("warm", "cold"):
            times: dict[str, list[float]] = {name: [] for name in sides}
            for i in range(args.warmup + args.iters):
                for name, drawer in sides.items():
                    if mode == "cold":
                        drawer.prompt_cache.clear()
                    sync()
                    start = time.perf_counter()
                    result = next(drawer.generate(request, identities))
                    sync()
                    assert result.regional
                    if i >= args.warmup:
                        times[name].append(time.perf_counter() - start)
            ratio = statistics.median(b / a for a, b in zip(times["shared"], times["per-character"]))
            cases[f"{count} characters, {mode}"] = {
                "characters": count, "prompts": mode, "ratio": ratio,
                "shared_median_s": statistics.median(times["shared"]),
                "per_character_median_s": statistics.median(times["per-character"])}
    return dict(preset=config.name, device=str(components.device), dtype=str(components.dtype), size=size,
                steps=steps, iters=args.iters, warmup=args.warmup, threads=torch.get_num_threads(),
                machine=platform.platform(), goal=GOAL, cases=cases)


def main(argv=None) -> int:
    args = parse_args(argv)
    results = measure(args)
    print(f"preset {results['preset']}, device {results['device']}, {results['size']}x{results['size']}, "
          f"{results['steps']} steps, {results['iters']} iters (+{results['warmup']} warm-up), "
          f"torch threads {results['threads']}")
    print(f"{'case':26s} {'shared s':>10s} {'per-char s':>10s} {'ratio':>7s}")
    for name, row in results["cases"].items():
        print(f"{name:26s} {row['shared_median_s']:10.4f} {row['per_character_median_s']:10.4f} "
              f"{row['ratio']:7.3f}")
    two = results["cases"]["2 characters, warm"]["ratio"]
    print(f"per-character / shared, 2 characters, warm prompt cache (median of paired ratios): {two:.3f} "
          f"(goal <= {GOAL}: {'met' if two <= GOAL else 'NOT met'})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
