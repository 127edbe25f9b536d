"""``bench/results/h200.json``: the numbers issue 19 is judged on, from one GPU check's files.

    python -m bench.sdxl_random.h200 OUT_DIR [--write bench/results/h200.json] [--commit SHA]

Reads what ``bench/gpu_check.sh`` wrote into ``OUT_DIR`` (``panel.json``, ``train.json``,
``profile.json`` from :mod:`bench.bench_sdxl_random`, ``faces.json`` from ``bench/bench_panel.py``)
and picks the rows of what the app runs by default on CUDA: the ``fast-step`` training row
(``train.fast_step: auto``) and the ``compile-regional`` panel row (``runtime.compile: auto``),
each falling back to the eager ``baseline`` row when the default's row is missing or failed (the
``*_variant`` keys say which row was used). Always writes ``OUT_DIR/h200.json``; ``--write``
copies it to the repository's file only when the GPU was an H200 (``--force`` overrides), so
numbers from another GPU or a CPU rehearsal never pose as H200 measurements.

Keys: ``identity_s`` (setup + pool fill + 450 steps), ``train_step_s``, ``panel_s`` (1024², 30
steps), ``panel_warmup_s`` (the panel's warm-up, compile included), ``face_pass_s`` (per face),
``regional_ratio`` (two identities, regional / plain), ``peak_gib`` (the largest of the chosen
rows), ``date``, ``commit``, ``gpu``, the goals they are checked against, and
``fast_step_loss_max_rel_diff`` (the fast step's warm-up losses against the eager step's, same
seed: the numerics check of the CUDA graph on the real model).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

#: issue 19's goals for the file's keys (seconds, GiB, ratio)
GOALS = {"identity_s": 20.0, "panel_s": 1.5, "panel_warmup_s": 30.0, "face_pass_s": 0.5,
         "peak_gib": 12.0, "regional_ratio": 1.03}
#: steps of one identity in the app's preset (train.steps)
IDENTITY_STEPS = 450


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _pick(rows: list[dict[str, Any]], section: str, preferred: str, key: str) -> dict[str, Any] | None:
    ok = [r for r in rows if r.get("section") == section and r.get("status") == "ok" and r.get(key) is not None]
    for name in (preferred, "baseline"):
        for row in ok:
            if row.get("variant") == name:
                return row
    return None


def _loss_diff(rows: list[dict[str, Any]]) -> float | None:
    """Largest relative difference between the fast step's and the eager step's warm-up losses
    (same seed, same draws), or None when either is missing."""
    found = {r.get("variant"): r.get("warmup_losses") for r in rows
             if r.get("section") == "train" and r.get("status") == "ok" and r.get("warmup_losses")}
    fast, eager = found.get("fast-step"), found.get("baseline")
    if not fast or not eager or len(fast) != len(eager):
        return None
    return max(abs(a - b) / max(abs(b), 1e-8) for a, b in zip(fast, eager))


def collect(out: Path, commit: str | None = None) -> dict[str, Any]:
    """The h200.json dict from a GPU check's folder (missing parts are None)."""
    data = {name: _load(out / f"{name}.json") for name in ("panel", "train", "profile", "faces")}
    rows = [row for name in ("panel", "train", "profile") for row in data[name].get("rows", [])]
    train = _pick(rows, "train", "fast-step", "step_s")
    panel = _pick(rows, "panel", "compile-regional", "seconds")
    faces = data["faces"]
    machine = data["train"].get("machine") or data["panel"].get("machine") or {}
    identity = None
    if train is not None:
        identity = train.get("setup_s", 0.0) + train.get("pool_fill_s", 0.0) + IDENTITY_STEPS * train["step_s"]
    peaks = [r.get("peak_gib") for r in (train, panel) if r and r.get("peak_gib") is not None]
    result = {
        "identity_s": identity, "train_step_s": train and train["step_s"],
        "train_variant": train and train["variant"],
        "panel_s": panel and panel["seconds"], "panel_warmup_s": panel and panel.get("warmup_s"),
        "panel_variant": panel and panel["variant"],
        "face_pass_s": (faces.get("face_pass") or {}).get("per_face_s"),
        "regional_ratio": faces.get("regional_vs_plain"),
        "peak_gib": max(peaks) if peaks else None,
        "profile": {r["variant"]: {k: r.get(k) for k in ("wall_ms_per_step", "cpu_op_ms_per_step",
                                                          "gpu_busy_ms_per_step", "kernels_per_step",
                                                          "aten_to_per_step")}
                    for r in data["profile"].get("rows", []) if r.get("status") == "ok"},
        "gpu": machine.get("gpu"), "date": machine.get("date_utc") or time.strftime("%Y-%m-%d %H:%M:%S"),
        "commit": commit, "goals": GOALS,
    }
    result["fast_step_loss_max_rel_diff"] = _loss_diff(rows)
    result["meets"] = {k: result[k] is not None and result[k] <= goal for k, goal in GOALS.items()}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="the GPU check's output folder")
    p.add_argument("--write", type=Path, default=None, help="also write here when the GPU is an H200")
    p.add_argument("--commit", default=None, help="the commit that was measured")
    p.add_argument("--force", action="store_true", help="write --write whatever the GPU")
    args = p.parse_args(argv)
    if not args.out.is_dir():
        print(f"error: {args.out} is not a folder", file=sys.stderr)
        return 2
    result = collect(args.out, args.commit)
    text = json.dumps(result, indent=2) + "\n"
    (args.out / "h200.json").write_text(text, encoding="utf-8")
    print(text, end="")
    if args.write is not None:
        if args.force or "H200" in str(result.get("gpu") or ""):
            args.write.parent.mkdir(parents=True, exist_ok=True)
            args.write.write_text(text, encoding="utf-8")
            print(f"wrote {args.write}")
        else:
            print(f"not writing {args.write}: measured on {result.get('gpu') or 'no GPU'}, not an H200")
    return 0


if __name__ == "__main__":
    sys.exit(main())
