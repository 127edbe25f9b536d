"""bench/bench_mlp_dtype.py: the rounding that keeps the MLPs in float32 is measured, not assumed."""

from __future__ import annotations

import torch

from bench.bench_mlp_dtype import main, unchanged_fractions


def test_bfloat16_loses_adam_steps_that_float32_keeps(capsys):
    assert max(unchanged_fractions(torch.float32, 3, 5e-5)) < 1e-3   # float32 keeps (almost) all
    first, last = unchanged_fractions(torch.bfloat16, 3, 5e-5)
    assert first > 0.3 and last > 0.3      # resolution ~1.2e-4 at 0.02: a 5e-5 step mostly rounds away
    # a 20x larger step does move them (a few return to the start value on the coarse grid)
    assert unchanged_fractions(torch.bfloat16, 3, 1e-3)[1] < last / 10
    assert main(["--steps", "2"]) == 0 and "bfloat16" in capsys.readouterr().out
