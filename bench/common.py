"""Shared helpers for the benchmarks: timing, peak memory, machine facts, JSON and tables.

Every time in this package is in seconds and every memory size in GiB (2**30 bytes) unless a name
says otherwise. On CUDA, regions are timed with CUDA events after a synchronize; elsewhere with
``time.perf_counter``. Warm-up runs are never part of a reported number.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

GIB = float(2 ** 30)


@dataclass(frozen=True)
class Timing:
    """Seconds of each timed repeat of one region (warm-up excluded)."""

    seconds: tuple[float, ...]
    warmup_seconds: tuple[float, ...] = ()

    @property
    def median(self) -> float:
        """Median of the timed repeats, seconds."""
        return statistics.median(self.seconds)

    @property
    def spread(self) -> float:
        """Largest minus smallest timed repeat, seconds (0 for one repeat)."""
        return max(self.seconds) - min(self.seconds)

    def as_dict(self) -> dict[str, Any]:
        return {"median_s": self.median, "min_s": min(self.seconds), "max_s": max(self.seconds),
                "repeats": len(self.seconds), "all_s": list(self.seconds),
                "warmup_s": list(self.warmup_seconds)}


def synchronize(device: torch.device) -> None:
    """Wait for all queued work on ``device`` (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_once(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    """Run ``fn`` once; return (seconds, its result). CUDA events on GPU, perf_counter on CPU."""
    synchronize(device)
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = fn()
        end.record()
        end.synchronize()
        torch.cuda.synchronize(device)
        return start.elapsed_time(end) / 1000.0, out
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def time_repeats(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 1,
                 warmup_fn: Callable[[], Any] | None = None) -> Timing:
    """Time ``repeats`` calls of ``fn`` after ``warmup`` untimed calls of ``warmup_fn or fn``."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    warm = tuple(time_once(warmup_fn or fn, device)[0] for _ in range(warmup))
    return Timing(seconds=tuple(time_once(fn, device)[0] for _ in range(repeats)), warmup_seconds=warm)


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory window on ``device`` (CUDA only; no-op elsewhere)."""
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gib(device: torch.device) -> float | None:
    """``torch.cuda.max_memory_allocated`` since the last reset, GiB; None off CUDA."""
    if device.type != "cuda":
        return None
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) / GIB


def allocated_gib(device: torch.device) -> float | None:
    """Memory held by tensors now (``torch.cuda.memory_allocated``), GiB; None off CUDA."""
    return torch.cuda.memory_allocated(device) / GIB if device.type == "cuda" else None


def peak_rss_gib() -> float | None:
    """Peak resident set size of this process, GiB (Linux/macOS; None where unknown)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (GIB if sys.platform == "darwin" else GIB / 1024)


def machine_info(device: torch.device) -> dict[str, Any]:
    """What a number was measured on: host, CPU, accelerator, library versions, date (UTC)."""
    info: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "host": socket.gethostname(), "platform": platform.platform(),
        "python": platform.python_version(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "device": str(device), "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    for name in ("diffusers", "transformers", "triton"):
        try:
            info[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - optional
            info[name] = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=props.total_memory / GIB,
                    gpu_sms=props.multi_processor_count, cuda=torch.version.cuda,
                    capability=f"{props.major}.{props.minor}")
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_json(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write ``payload`` as indented JSON (NaN/inf become null), creating parent folders."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_finite(payload), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return out


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def format_value(value: Any) -> str:
    """A table cell: floats to 4 significant digits, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table of ``rows`` restricted to ``columns`` (missing cells print '-')."""
    cells = [[format_value(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join([line, rule, *body])


def parse_choices(value: str, allowed: Iterable[str], what: str) -> list[str]:
    """Split a comma list (e.g. ``--only panel,train``) and check each item; ValueError if unknown."""
    allowed = list(allowed)
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise ValueError(f"{what}: unknown {bad or value!r}; choose from {', '.join(allowed)}")
    return items


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Results:
    """Rows of one benchmark run plus the facts needed to reproduce it (serialised to JSON)."""

    bench: str
    machine: dict[str, Any]
    settings: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, **row: Any) -> dict[str, Any]:
        self.rows.append(row)
        return row

    def as_dict(self) -> dict[str, Any]:
        return {"bench": self.bench, "machine": self.machine, "settings": self.settings,
                "rows": self.rows, "notes": self.notes}
