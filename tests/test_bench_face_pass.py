"""bench/bench_face_pass.py runs on the tiny preset and reports every size and both ways."""

from __future__ import annotations

import json

from bench import bench_face_pass


def test_bench_face_pass_reports_sizes_and_batched_vs_one_by_one(tmp_path, capsys):
    out = tmp_path / "face_pass.json"
    assert bench_face_pass.main(["--preset", "tiny", "--sizes", "32,64", "--iters", "1", "--warmup", "0",
                                 "--panel-size", "64", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["faces"] == 2 and set(data["sizes"]) == {"32", "64"}
    for row in data["sizes"].values():
        assert row["batched_s_per_face"] > 0 and row["one_by_one_s_per_face"] > 0
        assert row["score_after"] == []  # random identities: no recogniser score
    assert data["sizes"]["32"]["vs_first_size"] == 1.0
    assert "batched/one" in capsys.readouterr().out


def test_bench_face_pass_needs_library_and_names_together(capsys):
    assert bench_face_pass.main(["--names", "Ada Lovelace", "Alan Turing"]) == 2
    assert capsys.readouterr().err.strip() == "error: --library and --names go together"
