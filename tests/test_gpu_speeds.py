"""configs/speeds.yaml, the ZeroGPU durations it implies, and the visitor table of docs/APP.md."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from configs import ConfigError
from serving.gpu_speeds import (
    SPEED_KEYS,
    SPEEDS_PATH,
    budget_table,
    default_speeds,
    load_speeds,
)

ROOT = Path(__file__).resolve().parents[1]


def test_durations_come_from_measured_speeds_only():
    speeds = default_speeds()
    assert speeds.train_step_s.measured and speeds.panel_s.measured and speeds.face_pass_s.measured
    per_step = speeds.train_step_s.value * speeds.train_factor
    assert speeds.seconds_per_step() == pytest.approx(per_step)
    expected = min(speeds.max_call_s, math.ceil((speeds.train_setup_s.value + 100 * per_step) * speeds.margin))
    assert speeds.training_duration_s(100) == max(speeds.min_call_s, expected)
    # the targets (issue 19) are kept apart: marked not measured, never the default
    target = speeds.with_targets()
    assert target.train_step_s.value == speeds.targets["train_step_s"] < speeds.train_step_s.value
    assert not target.train_step_s.measured and speeds.training_duration_s(450) > target.training_duration_s(450)
    panel = (speeds.panel_s.value + speeds.faces_per_panel * speeds.face_pass_s.value) * speeds.panel_factor
    assert speeds.seconds_per_panel() == pytest.approx(panel)


def test_visitor_plan_counts_what_a_quota_buys():
    speeds = default_speeds().with_targets()
    plan = speeds.visitor_plan(1500)
    assert plan.identities == 1500 // plan.identity_s and plan.comics == 1500 // plan.comic_s
    assert plan.two_and_comic == (2 * plan.identity_s + plan.comic_s <= 1500)
    assert not speeds.visitor_plan(10).two_and_comic


def test_docs_table_is_the_one_the_speeds_give():
    """docs/APP.md shows exactly what configs/speeds.yaml implies (regenerate with budget_table)."""
    assert budget_table(default_speeds()) in (ROOT / "docs" / "APP.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda raw: raw["speeds"]["panel_s"].pop("measured"), "speeds.panel_s"),
    (lambda raw: raw["speeds"]["train_step_s"].update(value=-1), "train_step_s.value"),
    (lambda raw: raw["zero_gpu"].update(margin="lots"), "zero_gpu.margin"),
    (lambda raw: raw["zero_gpu"].update(min_call_s=900), "min_call_s"),
    (lambda raw: raw.pop("zero_gpu"), "'zero_gpu' must be a mapping"),
])
def test_bad_speeds_file_is_one_line(tmp_path, edit, message):
    raw = yaml.safe_load(SPEEDS_PATH.read_text(encoding="utf-8"))
    edit(raw)
    path = tmp_path / "speeds.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as caught:
        load_speeds(path)
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="cannot read"):
        load_speeds(tmp_path / "missing.yaml")


def test_every_speed_says_where_it_comes_from():
    speeds = default_speeds()
    assert all(getattr(speeds, key).source for key in SPEED_KEYS)


def test_panel_seconds_scale_with_steps_and_size():
    speeds = default_speeds()
    base = speeds.seconds_per_panel(face_pass=False)
    assert speeds.seconds_per_panel(face_pass=False, steps=15) == pytest.approx(base / 2)
    assert speeds.seconds_per_panel(face_pass=False, pixels=2048 * 1024) == pytest.approx(base * 2)
    assert speeds.seconds_per_panel(face_pass=False, pixels=512 * 512) == pytest.approx(base)  # never less
    assert speeds.drawing_duration_s(8, 2, steps=60) > speeds.drawing_duration_s(8, 2)


def test_the_speeds_file_is_not_a_preset():
    from configs import available_presets

    assert "speeds" not in available_presets()
