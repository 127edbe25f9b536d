"""bench/bench_hostile.py: its cases are built and measured (exit 2, one error line, a peak)."""

from __future__ import annotations

from bench.bench_hostile import make_cases, run_case


def test_the_bench_measures_a_refusal_in_a_fresh_process(tmp_path):
    cases = make_cases(tmp_path)
    assert len(cases) == 7 and (tmp_path / "bomb.zip").stat().st_size < 6 << 20
    report = run_case(cases["zip bomb, 5 GiB of zeros"])
    assert report["code"] == 2 and report["stderr_lines"] == 1
    assert "limits.yaml: json_bytes" in report["error"]
    # The interpreter's own peak (torch, its CUDA libraries) differs by machine: the target is the
    # growth over a refusal that reads nothing, measured in the same run (issue 15: < 100 MB).
    baseline = run_case(cases["baseline (missing file)"])
    assert baseline["code"] == 2 and "not found" in baseline["error"]
    assert 0 < report["seconds"] and report["peak_mb"] - baseline["peak_mb"] < 100
