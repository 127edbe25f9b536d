"""GPU speeds and the ZeroGPU durations they imply (``configs/speeds.yaml``; docs/APP.md).

ZeroGPU counts a visitor's daily quota on the duration a ``spaces.GPU`` call *asks for*, so the
app asks for what its speeds predict: :meth:`GPUSpeeds.training_duration_s` and
:meth:`GPUSpeeds.drawing_duration_s`. Only speeds marked ``measured: true`` in the file set the
durations; issue 19's targets for the fast paths are kept beside them (:meth:`GPUSpeeds.with_targets`)
for the tables in docs/APP.md and docs/PERFORMANCE.md, and replace the measured values only when
a GPU check has measured them and the file says so.

Seconds in the file are for a full H200; ZeroGPU's default slice is half of one, so
``zero_gpu.train_factor`` / ``panel_factor`` scale them. A duration is
``(setup + work) * margin``, at least ``min_call_s`` and at most ``max_call_s`` (the most one call
may ask for: a longer ask would be refused outright, while the real speed, e.g. with the fast
step, may well fit; the speed measured on the Space's first finished run then takes over,
:class:`serving.zero_gpu.StepSpeed`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from configs import CONFIG_DIR, ConfigError

#: The speeds file shipped with the app.
SPEEDS_PATH = CONFIG_DIR / "speeds.yaml"
#: Sampling steps and pixels of the panel ``panel_s`` was measured on (1024², 30 steps).
PANEL_STEPS = 30
PANEL_PIXELS = 1024 * 1024
#: The speeds every duration needs (seconds on a full H200).
SPEED_KEYS = ("train_step_s", "train_setup_s", "panel_s", "face_pass_s", "drawing_setup_s")


@dataclass(frozen=True)
class Speed:
    """One speed: seconds, whether it was measured (else a target or an estimate), and where from."""

    value: float
    measured: bool
    source: str = ""


@dataclass(frozen=True)
class VisitorPlan:
    """What one day's GPU quota buys (every request asks for its own duration).

    Attributes:
        quota_s: the visitor's GPU seconds per day.
        identity_s: seconds asked for one identity; comic_s: for one comic of ``panels`` panels.
        identities: identities alone; comics: comics alone.
        two_and_comic: whether two identities and one comic fit together.
    """

    quota_s: int
    identity_s: int
    comic_s: int
    identities: int
    comics: int
    two_and_comic: bool


@dataclass(frozen=True)
class GPUSpeeds:
    """``configs/speeds.yaml``: speeds (seconds on a full H200), targets and ZeroGPU's terms."""

    train_step_s: Speed
    train_setup_s: Speed
    panel_s: Speed
    face_pass_s: Speed
    drawing_setup_s: Speed
    targets: Mapping[str, float]
    train_factor: float
    panel_factor: float
    margin: float
    min_call_s: int
    max_call_s: int
    faces_per_panel: int
    quotas_s: Mapping[str, int]

    def with_targets(self) -> GPUSpeeds:
        """The same with every speed that has a target replaced by it (marked not measured)."""
        changes = {key: Speed(float(value), False, "target (issue 19)")
                   for key, value in self.targets.items() if key in SPEED_KEYS}
        return dataclasses.replace(self, **changes)

    def seconds_per_step(self) -> float:
        """Seconds per training step on a ZeroGPU slice."""
        return self.train_step_s.value * self.train_factor

    def seconds_per_panel(self, face_pass: bool = True, steps: int = PANEL_STEPS,
                          pixels: int = PANEL_PIXELS) -> float:
        """Seconds per panel image on a ZeroGPU slice, with ``faces_per_panel`` face redraws.

        ``panel_s`` was measured at :data:`PANEL_STEPS` steps and :data:`PANEL_PIXELS` pixels; the
        drawing scales with steps and (at least) with the pixel count (attention grows faster,
        so larger panels are not under-asked; smaller ones are asked for at 1024²'s rate).
        """
        scale = max(1, steps) / PANEL_STEPS * max(1.0, pixels / PANEL_PIXELS)
        faces = self.faces_per_panel * self.face_pass_s.value if face_pass else 0.0
        return (self.panel_s.value * scale + faces) * self.panel_factor

    def _duration(self, seconds: float) -> int:
        return int(min(self.max_call_s, max(self.min_call_s, math.ceil(seconds * self.margin))))

    def training_duration_s(self, steps: int, seconds_per_step: float | None = None) -> int:
        """GPU seconds to ask for one identity of ``steps`` steps (``seconds_per_step``: a speed
        measured on this Space, default :meth:`seconds_per_step`)."""
        per_step = self.seconds_per_step() if seconds_per_step is None else max(0.0, seconds_per_step)
        return self._duration(self.train_setup_s.value + max(0, steps) * per_step)

    def drawing_duration_s(self, panels: int, candidates: int = 1, face_pass: bool = True,
                           steps: int = PANEL_STEPS, pixels: int = PANEL_PIXELS) -> int:
        """GPU seconds to ask for drawing ``panels`` x ``candidates`` images of ``steps`` steps and
        ``pixels`` pixels each."""
        images = max(1, panels) * max(1, candidates)
        per_image = self.seconds_per_panel(face_pass, steps, pixels)
        return self._duration(self.drawing_setup_s.value + images * per_image)

    def visitor_plan(self, quota_s: int, steps: int = 450, panels: int = 4) -> VisitorPlan:
        """What ``quota_s`` GPU seconds a day buy: identities of ``steps`` steps, comics of
        ``panels`` panels (one candidate, face pass on)."""
        identity, comic = self.training_duration_s(steps), self.drawing_duration_s(panels)
        return VisitorPlan(quota_s=quota_s, identity_s=identity, comic_s=comic,
                           identities=quota_s // identity, comics=quota_s // comic,
                           two_and_comic=2 * identity + comic <= quota_s)


def budget_table(speeds: GPUSpeeds, steps: int = 450, panels: int = 4) -> str:
    """The Markdown table of docs/APP.md: per visitor quota, what the measured speeds and the
    targets buy (identities of ``steps`` steps, comics of ``panels`` panels)."""
    target = speeds.with_targets()
    header = ("| visitor (GPU time a day) | measured: identities | measured: 4-panel comics | "
              "measured: 2 identities + a comic | targets: identities | targets: 4-panel comics | "
              "targets: 2 identities + a comic |")
    rows = [header, "|---|---|---|---|---|---|---|"]
    for name, quota in speeds.quotas_s.items():
        now, goal = speeds.visitor_plan(quota, steps, panels), target.visitor_plan(quota, steps, panels)
        rows.append(f"| {name} ({quota} s) | {now.identities} ({now.identity_s} s each) | "
                    f"{now.comics} ({now.comic_s} s each) | {'yes' if now.two_and_comic else 'no'} | "
                    f"{goal.identities} ({goal.identity_s} s each) | {goal.comics} ({goal.comic_s} s each) | "
                    f"{'yes' if goal.two_and_comic else 'no'} |")
    return "\n".join(rows)


def _number(raw: Any, key: str, path: Path) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not raw > 0:
        raise ConfigError(f"{path}: '{key}' must be a positive number, got {raw!r}")
    return float(raw)


def _section(raw: Mapping[str, Any], key: str, path: Path) -> Mapping[str, Any]:
    value = raw.get(key)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: '{key}' must be a mapping")
    return value


def load_speeds(path: str | os.PathLike[str] | None = None) -> GPUSpeeds:
    """Read a speeds file (default :data:`SPEEDS_PATH`). Raises ConfigError (one line) on a
    missing file or a bad value."""
    path = Path(path) if path is not None else SPEEDS_PATH
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the speeds file ({type(exc).__name__})") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: the speeds file must be a mapping")
    table, zero = _section(raw, "speeds", path), _section(raw, "zero_gpu", path)
    speeds = {}
    for key in SPEED_KEYS:
        entry = table.get(key)
        if not isinstance(entry, Mapping) or not isinstance(entry.get("measured"), bool):
            raise ConfigError(f"{path}: 'speeds.{key}' needs a value and measured: true or false")
        speeds[key] = Speed(_number(entry.get("value"), f"speeds.{key}.value", path), entry["measured"],
                            str(entry.get("source", "")))
    targets = {str(k): _number(v, f"targets.{k}", path) for k, v in (raw.get("targets") or {}).items()}
    quotas = {str(k): int(_number(v, f"zero_gpu.quotas_s.{k}", path))
              for k, v in _section(zero, "quotas_s", path).items()}
    calls = {key: int(_number(zero.get(key), f"zero_gpu.{key}", path))
             for key in ("min_call_s", "max_call_s", "faces_per_panel")}
    if calls["min_call_s"] > calls["max_call_s"]:
        raise ConfigError(f"{path}: 'zero_gpu.min_call_s' is above 'zero_gpu.max_call_s'")
    return GPUSpeeds(**speeds, targets=targets, quotas_s=quotas, **calls,
                     **{key: _number(zero.get(key), f"zero_gpu.{key}", path)
                        for key in ("train_factor", "panel_factor", "margin")})


@functools.lru_cache(maxsize=1)
def default_speeds() -> GPUSpeeds:
    """The shipped :data:`SPEEDS_PATH`, read once per process (frozen)."""
    return load_speeds()


__all__ = ["PANEL_PIXELS", "PANEL_STEPS", "SPEEDS_PATH", "SPEED_KEYS", "GPUSpeeds", "Speed", "VisitorPlan", "budget_table",
           "default_speeds", "load_speeds"]
