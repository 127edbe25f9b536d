"""bench.sdxl_random.h200 (the h200.json writer) and the profile section's per-step numbers,
on hand-written inputs (no GPU needed)."""

from __future__ import annotations

import json
import types

import pytest
import torch

from bench.sdxl_random import h200
from bench.sdxl_random.profiling import profile_summary


def _write(folder, name, rows=None, **extra):
    (folder / f"{name}.json").write_text(json.dumps({"rows": rows or [], **extra}))


def _check_folder(tmp_path, gpu="NVIDIA H200", fast_ok=True):
    machine = {"gpu": gpu, "date_utc": "2026-12-05 06:00:00"}
    _write(tmp_path, "panel", [
        {"section": "panel", "variant": "baseline", "status": "ok", "seconds": 2.9, "warmup_s": 3.0, "peak_gib": 9.3},
        {"section": "panel", "variant": "compile-regional", "status": "ok", "seconds": 1.4, "warmup_s": 25.0,
         "peak_gib": 9.6}], machine=machine)
    _write(tmp_path, "train", [
        {"section": "train", "variant": "baseline", "status": "ok", "step_s": 0.35, "setup_s": 2.0,
         "pool_fill_s": 1.0, "peak_gib": 8.8, "warmup_losses": [0.5, 0.25, 1.0]},
        {"section": "train", "variant": "fast-step", "status": "ok" if fast_ok else "error: boom",
         "step_s": 0.03, "setup_s": 2.0, "pool_fill_s": 1.0, "peak_gib": 10.5,
         "warmup_losses": [0.5, 0.26, 1.0]}], machine=machine)
    _write(tmp_path, "profile", [
        {"section": "profile", "variant": "baseline", "status": "ok", "wall_ms_per_step": 400.0,
         "gpu_busy_ms_per_step": 76.0, "kernels_per_step": 16000.0}])
    (tmp_path / "faces.json").write_text(json.dumps({"regional_vs_plain": 1.02, "face_pass": {"per_face_s": 0.45}}))


def test_collect_takes_the_cuda_defaults_rows(tmp_path):
    _check_folder(tmp_path)
    result = h200.collect(tmp_path, "abc123")
    assert (result["train_variant"], result["panel_variant"]) == ("fast-step", "compile-regional")
    assert result["identity_s"] == pytest.approx(2.0 + 1.0 + 450 * 0.03)
    assert (result["panel_s"], result["panel_warmup_s"], result["peak_gib"]) == (1.4, 25.0, 10.5)
    assert (result["face_pass_s"], result["regional_ratio"], result["commit"]) == (0.45, 1.02, "abc123")
    assert result["profile"]["baseline"]["kernels_per_step"] == 16000.0
    assert all(result["meets"].values())
    assert result["fast_step_loss_max_rel_diff"] == pytest.approx(0.04)


def test_collect_falls_back_to_the_baseline_and_never_meets_what_is_missing(tmp_path):
    _check_folder(tmp_path, fast_ok=False)
    (tmp_path / "faces.json").unlink()
    result = h200.collect(tmp_path)
    assert result["train_variant"] == "baseline" and result["train_step_s"] == 0.35
    assert result["fast_step_loss_max_rel_diff"] is None  # the fast row failed
    assert result["face_pass_s"] is None and not result["meets"]["face_pass_s"]
    assert not result["meets"]["identity_s"]  # 3 + 450 x 0.35 s


@pytest.mark.parametrize(("gpu", "written"), [("NVIDIA H200", True), ("NVIDIA A100", False)])
def test_the_repository_file_is_written_only_for_an_h200(tmp_path, capsys, gpu, written):
    out = tmp_path / "out"
    out.mkdir()
    _check_folder(out, gpu=gpu)
    target = tmp_path / "repo" / "h200.json"
    assert h200.main([str(out), "--write", str(target), "--commit", "abc"]) == 0
    assert (out / "h200.json").is_file() and target.is_file() == written
    assert h200.main([str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def _event(name, start, end, cuda):
    device = torch.autograd.DeviceType.CUDA if cuda else torch.autograd.DeviceType.CPU
    return types.SimpleNamespace(name=name, device_type=device, self_cpu_time_total=0.0 if cuda else end - start,
                                 time_range=types.SimpleNamespace(start=start, end=end))


def test_profile_summary_counts_busy_time_once_for_overlapping_kernels():
    events = [_event("gemm", 0, 1000, True), _event("gemm", 500, 1500, True), _event("norm", 3000, 3500, True),
              _event("aten::to", 0, 200, False), _event("aten::to", 0, 100, False), _event("aten::mm", 0, 700, False)]
    row = profile_summary(events, steps=2, wall_s=0.01)
    assert row["gpu_busy_ms_per_step"] == pytest.approx((1500 + 500) / 1e3 / 2)
    assert row["kernels_per_step"] == 1.5 and row["aten_to_per_step"] == 1.0
    assert row["cpu_op_ms_per_step"] == pytest.approx(1.0 / 2) and row["wall_ms_per_step"] == pytest.approx(5.0)
    assert row["top_kernels"][0][0] == "gemm" and row["top_kernels"][0][1] == pytest.approx(1.0)
    cpu_only = profile_summary(events[3:], steps=1, wall_s=0.001)
    assert cpu_only["gpu_busy_ms_per_step"] is None and cpu_only["kernels_per_step"] is None
