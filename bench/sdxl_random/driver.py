"""Command line, plan and the run loop of the benchmark (:mod:`bench.bench_sdxl_random`)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench import common
from bench.arch import ARCH_CHOICES, build_arch
from bench.sdxl_random.flops import _meta_modules, count_flops
from bench.sdxl_random.panel import run_panel_variant
from bench.sdxl_random.profiling import run_profile_variant
from bench.sdxl_random.summary import (
    PANEL_COLUMNS,
    PROFILE_COLUMNS,
    TRAIN_COLUMNS,
    summarize,
    summary_table,
)
from bench.sdxl_random.train import real_trainer, run_train_variant, run_trainer_variant
from bench.sdxl_random.variants import (
    ALL_VARIANTS,
    DTYPES,
    H200_BF16_TFLOPS,
    SECTIONS,
    TRAINER_ONLY,
    make_variant,
    skip_reason,
)


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
    p.add_argument("--profile-steps", type=int, default=10, help="training steps under torch.profiler")
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
    return Path(__file__).resolve().parents[1] / "results" / f"sdxl_random-{arch}-{stamp}.json"


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
        cols = {"panel": PANEL_COLUMNS, "profile": PROFILE_COLUMNS}.get(row["section"], TRAIN_COLUMNS)
        print(" | ".join(f"{c}={common.format_value(row.get(c))}" for c in cols), flush=True)

    components = None
    if {"panel", "train", "profile"} & set(plan.sections) or args.arch == "preset":
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
    trains = "train" in plan.sections or "profile" in plan.sections
    if trains and args.train_impl in ("auto", "trainer"):
        trainer_cls, trainer_why = real_trainer()
        if trainer_cls is None and args.train_impl == "trainer":
            raise SystemExit(f"error: --train-impl trainer: {trainer_why}")
        results.notes.append(f"train: {trainer_why}" if trainer_cls else
                             f"train: faithful step ({trainer_why})")
    elif trains:
        results.notes.append("train: faithful step (--train-impl step)")
    for section in ("panel", "train", "profile"):
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
            if section == "profile" and trainer_cls is None:
                emit(row | {"status": "skipped: the profile runs the app's trainer"})
                continue
            if section == "train" and trainer_cls is None and name in TRAINER_ONLY:
                emit(row | {"status": "skipped: only the app's trainer has this switch"})
                continue
            try:
                measured = None
                if section == "profile":
                    row |= {"resolution": plan.train_size}
                    row |= run_profile_variant(trainer_cls, components, variant, plan.train_size,
                                               args.profile_steps, plan.train_warmup, args.seed)
                elif section == "panel":
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
                        except Exception as exc:
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
