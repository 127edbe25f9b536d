"""Benchmark the identity face pass: crop size (768 vs 1024) and one batched call vs face by face.

For each crop size in ``--sizes`` a :class:`~pipelines.generation.PanelGenerator` on the SAME
loaded components (``generation.face_pass_size`` replaced) redraws the faces of one drawn
two-character panel, holding the device gate as :meth:`PanelGenerator.draw` does. Each round
times, back to back (so load drift hits both alike):

* ``batched``: the face pass as the app runs it, all faces in one inpainting call;
* ``one by one``: the same faces, one ``face_pass`` call per face.

Reported per size: seconds per face (median), batched / one-by-one (median of paired ratios),
size / first size (median of paired ratios). With ``--library`` and ``--names`` (two trained
identities that have library face crops) the faces are found and matched in the drawn panel as
the app does, and each face's identity score (cosine to its own reference, dlib or insightface
as the preset says) and leak (to the other character) is reported before and after the pass at
each size: run it on a GPU with the sdxl preset for the numbers that matter. Without a library
the identities are random and the boxes explicit (tiny panels hold no detectable face).

    python bench/bench_face_pass.py --preset tiny --iters 3 --panel-size 256
    python bench/bench_face_pass.py --preset sdxl --library embeddings --names "Ada Lovelace" \\
        "Alan Turing" --json bench/results/face_pass_h200.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PAIR_PROMPT = "{} and {} laugh by the window, wearing glasses"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", help="config preset (default tiny)")
    parser.add_argument("--config", help="a preset YAML file (wins over --preset)")
    parser.add_argument("--sizes", default="768,1024", help="face crop sizes in pixels, comma separated")
    parser.add_argument("--iters", type=int, default=3, help="timed rounds per size")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds per size first")
    parser.add_argument("--steps", type=int, help="sampling steps (default: the preset's)")
    parser.add_argument("--panel-size", type=int, help="panel width = height (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--library", type=Path, help="an identity library with the two --names")
    parser.add_argument("--names", nargs=2, metavar="NAME", help="two identities in --library")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser.parse_args(argv)


def bench_cast(components, library: Path | None, names: list[str] | None) -> dict:
    """name -> identity: from ``library`` when given, else two random identities."""
    import torch

    if library is not None:
        from identities.library import IdentityLibrary

        shelf = IdentityLibrary(library)
        return {name: shelf.get(name) for name in names or ()}
    from pipelines.project import EmbeddedIdentity

    d1 = components.text_encoder.get_input_embeddings().embedding_dim
    d2 = components.text_encoder_2.get_input_embeddings().embedding_dim
    g = torch.Generator().manual_seed(1)
    return {name: EmbeddedIdentity(name, torch.randn(2, d1, generator=g) * 0.05, torch.randn(2, d2, generator=g) * 0.05)
            for name in ("Ada Lovelace", "Alan Turing")}


def main(argv=None) -> int:
    args = parse_args(argv)
    if (args.library is None) != (args.names is None):
        print("error: --library and --names go together", file=sys.stderr)
        return 2
    import numpy as np
    import torch

    from configs import load_config
    from models.loading import load_components
    from pipelines.face_pass import FaceJob, identity_matcher
    from pipelines.generation import ComicRequest, PanelGenerator, PanelSpec

    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(preset=args.preset, path=args.config)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    components = load_components(config)
    cast = bench_cast(components, args.library, args.names)
    names = tuple(cast)
    side = args.panel_size or config.generation.width
    request = ComicRequest(panels=(PanelSpec(PAIR_PROMPT.format(*names), names),), style="none", seed=args.seed,
                           steps=args.steps or config.generation.steps, width=side, height=side, candidates=1,
                           face_pass=False)

    def generator_for(size: int) -> PanelGenerator:
        generation = dataclasses.replace(config.generation, face_pass_size=size)
        return PanelGenerator(dataclasses.replace(components, config=config.replace(generation=generation)))

    def sync() -> None:
        if components.device.type == "cuda":
            torch.cuda.synchronize()

    base = generator_for(sizes[0])
    resolved, (panel,) = base.prepare(request, cast)
    with base.gate.work():
        image = base.draw(resolved, panel)[0].image
    matcher = identity_matcher(config.face, components.face_detector, cast, print) if args.library else None
    jobs = base.find_faces(resolved, panel, image, matcher) if matcher is not None else []
    if len(jobs) < 2:  # explicit boxes: where the automatic places put two faces
        if args.library:
            print(f"found {len(jobs)} matched faces in the drawn panel; timing explicit boxes")
        box = side / 4
        jobs = [FaceJob(0, names[0], (side * 0.15, box, side * 0.15 + box, 2 * box)),
                FaceJob(1, names[1], (side * 0.6, box, side * 0.6 + box, 2 * box))]
    references = np.stack([matcher.references[n] for n in names]) if matcher is not None else None

    def score(picture) -> list:
        from bench.eval_multi import score_cast

        return score_cast(matcher.similarity, picture, references) if references is not None else []

    rows: dict[int, dict] = {}
    times = {size: {"batched": [], "one by one": []} for size in sizes}
    generators = {size: generator_for(size) for size in sizes}
    for i in range(args.warmup + args.iters):
        for size in sizes:
            generator = generators[size]
            for way in ("batched", "one by one"):
                sync()
                start = time.perf_counter()
                with generator.gate.work():
                    if way == "batched":
                        out, _ = generator.face_pass(resolved, panel, image, args.seed, jobs=jobs)
                    else:
                        for job in jobs:
                            generator.face_pass(resolved, panel, image, args.seed, jobs=[job])
                sync()
                if i >= args.warmup:
                    times[size][way].append((time.perf_counter() - start) / len(jobs))
            if i == args.warmup + args.iters - 1:
                rows[size] = dict(score_after=score(out))
    first = sizes[0]
    print(f"preset {config.name}, device {components.device}, panel {side}x{side}, {request.steps} steps, "
          f"strength {config.generation.face_pass_strength}, {len(jobs)} faces, {args.iters} rounds")
    print(f"{'crop px':>8s} {'batched s/face':>15s} {'one-by-one s/face':>18s} {'batched/one':>12s} "
          f"{'vs ' + str(first) + ' px':>10s}")
    for size in sizes:
        t = times[size]
        row = rows[size]
        row.update(batched_s_per_face=statistics.median(t["batched"]),
                   one_by_one_s_per_face=statistics.median(t["one by one"]),
                   batched_vs_one_by_one=statistics.median(a / b for a, b in zip(t["batched"], t["one by one"])),
                   vs_first_size=statistics.median(a / b for a, b in zip(t["batched"], times[first]["batched"])))
        print(f"{size:8d} {row['batched_s_per_face']:15.4f} {row['one_by_one_s_per_face']:18.4f} "
              f"{row['batched_vs_one_by_one']:12.3f} {row['vs_first_size']:10.3f}")
    if references is not None:
        before = score(image)
        print("identity score (own / leak) per face: before " + ", ".join(f"{o} / {k}" for o, k in before))
        for size in sizes:
            print(f"  after, {size} px: " + ", ".join(f"{o} / {k}" for o, k in rows[size]["score_after"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dict(
            preset=config.name, device=str(components.device), panel=side, steps=request.steps,
            faces=len(jobs), iters=args.iters, strength=config.generation.face_pass_strength,
            score_before=score(image), sizes={str(k): v for k, v in rows.items()}), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
