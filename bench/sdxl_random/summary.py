"""Result tables and the targets: one table per section, then each target against the
baseline and the best measured variant (``--summarize``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bench import common

PANEL_COLUMNS = ("section", "variant", "dtype", "status", "seconds", "warmup_s", "peak_gib",
                 "floor_s", "floor_frac")
PROFILE_COLUMNS = ("section", "variant", "dtype", "status", "wall_ms_per_step", "cpu_op_ms_per_step",
                   "gpu_busy_ms_per_step", "kernels_per_step", "aten_to_per_step")
TRAIN_COLUMNS = ("section", "variant", "dtype", "status", "step_s", "identity_s", "peak_gib",
                 "floor_s", "floor_frac")


def summary_table(result: dict[str, Any]) -> str:
    """The rows of a results dict as text tables, one per section."""
    parts = []
    rows = result["rows"]
    flops = [r for r in rows if r["section"] == "flops"]
    if flops:
        parts.append(common.format_table(flops, ("part", "tflop", "floor_s")))
    for section, cols in (("panel", PANEL_COLUMNS), ("train", TRAIN_COLUMNS), ("profile", PROFILE_COLUMNS)):
        sel = [r for r in rows if r["section"] == section]
        if sel:
            parts.append(common.format_table(sel, cols[1:]))
    return "\n\n".join(parts)


# Targets (docs/PERFORMANCE.md): on an H200, seconds and decimal gigabytes.
TARGETS = {"panel_s": 1.5, "identity_s": 20.0, "peak_gb": 12.0}  # issue 19: panel <= 1.5 s


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
