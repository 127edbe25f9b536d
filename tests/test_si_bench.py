"""Smoke test of the training-step benchmark (tiny preset, a few steps)."""

from __future__ import annotations

import json

from bench.bench_train_step import main


def test_bench_train_step_writes_json(tmp_path, capsys):
    out = tmp_path / "train_step.json"
    assert main(["--preset", "tiny", "--iters", "4", "--warmup", "1", "--augment-pool", "2", "--flops",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["iters"] == 4 and result["augment_pool"] == 2 and result["fresh_augmentation_steps"] == 2
    assert result["ours"]["n"] == 4 and result["bare_unet_fwd_bwd"]["n"] == 4
    assert result["ratio_mean"] > 0 and result["goal"] == 1.15
    flops = result["flops"]
    # our step contains a UNet forward + backward, plus the text encoders
    assert flops["ours_step_without_vae"] > flops["bare_unet_fwd_bwd"] + 0.5 * flops["text_encoders_fwd_bwd"]
    assert result["flop_ratio_fresh_every_step"] > result["flop_ratio"] > 1.0
    assert "time ratio ours/bare" in capsys.readouterr().out
