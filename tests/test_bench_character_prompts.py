"""bench/bench_character_prompts.py: both regional paths drawn side by side, ratios reported."""

from __future__ import annotations

import json

from bench.bench_character_prompts import CASTS, main


def test_bench_times_shared_and_per_character_panels_side_by_side(tmp_path, capsys):
    out = tmp_path / "cp.json"
    assert main(["--preset", "tiny", "--iters", "1", "--warmup", "0", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert set(results["cases"]) == {f"{n} characters, {m}" for n in CASTS for m in ("warm", "cold")}
    for row in results["cases"].values():
        assert row["ratio"] > 0 and row["shared_median_s"] > 0 and row["per_character_median_s"] > 0
    printed = capsys.readouterr().out
    assert "per-character / shared, 2 characters" in printed and "goal <= 1.1" in printed
