"""The sdxl-random benchmark in --smoke mode on the tiny preset (CPU, seconds), and its parts."""

from __future__ import annotations

import json

import pytest
import torch

from bench import bench_sdxl_random as bench
from bench.arch import build_arch


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run of every section; returns (exit code, the JSON written, the table printed)."""
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    code = bench.main(["--arch", "preset", "--preset", "tiny", "--smoke", "--device", "cpu",
                       "--only", "flops,panel,train", "--json", str(out)])
    return code, json.loads(out.read_text())


def _rows(result, section):
    return {r["variant"]: r for r in result["rows"] if r["section"] == section}


def test_smoke_runs_every_section_and_writes_json(smoke):
    code, result = smoke
    assert code == 0
    assert result["bench"] == "sdxl_random"
    assert result["machine"]["device"] == "cpu" and result["machine"]["torch"] == torch.__version__
    resolved = result["settings"]["resolved"]
    assert resolved["panel_size"] == 64 and resolved["train_size"] == 64  # the tiny preset's sizes
    assert result["settings"]["build_s"] > 0


def test_smoke_panel_rows(smoke):
    panel = _rows(smoke[1], "panel")
    assert set(panel) == set(bench.PANEL_VARIANTS) - {"fp32"}  # fp32 is the baseline on CPU
    for name in ("baseline", "bf16", "fp16", "attn-default", "channels-last", "vae-tiling"):
        row = panel[name]
        assert row["status"] == "ok", row
        assert row["seconds"] > 0 and row["min_s"] > 0 and row["warmup_s"] > 0
        assert row["steps"] == 4 and row["size"] == 64 and row["guidance"] == 8.5
        assert row["peak_gib"] is None  # CUDA-only
        assert 0 < row["floor_frac"] < 1
    assert panel["bf16"]["dtype"] == "bfloat16" and panel["fp16"]["dtype"] == "float16"
    assert panel["attn-default"]["attention"] == "default"
    assert panel["cpu-offload"]["status"].startswith("skipped")
    assert panel["compile"]["status"].startswith("skipped")


def test_smoke_train_rows(smoke):
    train = _rows(smoke[1], "train")
    assert set(train) == set(bench.TRAIN_VARIANTS) - {"fp32"}
    for name in ("baseline", "bf16", "fp16", "attn-default", "channels-last", "grad-ckpt"):
        row = train[name]
        assert row["status"] == "ok", row
        assert row["step_s"] > 0 and row["resolution"] == 64 and row["repeats"] >= 2
        assert row["min_s"] <= row["step_s"] <= row["max_s"]
        assert row["identity_steps"] == 500
        assert row["identity_s"] == pytest.approx(row["setup_s"] + row.get("pool_fill_s", 0.0)
                                                  + 500 * row["step_s"])
        # the app's own trainer when it imports, else the faithful step; the JSON says which
        assert row["train_impl"] == ("trainer" if bench.real_trainer()[0] else "faithful-step")
    assert train["grad-ckpt"]["grad_ckpt"] is True
    assert train["compile"]["status"].startswith("skipped")


def test_smoke_flop_rows_add_up(smoke):
    flops = {r["part"]: r for r in smoke[1]["rows"] if r["section"] == "flops"}
    assert all(r["tflop"] > 0 and r["floor_s"] > 0 for r in flops.values())
    assert flops["panel"]["tflop"] == pytest.approx(
        4 * flops["unet_fwd_panel"]["tflop"] + 2 * flops["text_encoders_fwd"]["tflop"]
        + flops["vae_decode_panel"]["tflop"])
    # frozen weights: backward computes input gradients only, about one more forward
    ratio = flops["unet_fwdbwd_train"]["tflop"] / flops["unet_fwd_train"]["tflop"]
    assert 1.5 < ratio < 2.5
    assert flops["identity"]["tflop"] == pytest.approx(500 * flops["train_step"]["tflop"])


def test_faithful_step_mode(tmp_path):
    out = tmp_path / "step.json"
    assert bench.main(["--arch", "preset", "--preset", "tiny", "--smoke", "--device", "cpu",
                       "--only", "train", "--variants", "baseline", "--train-impl", "step",
                       "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    (row,) = result["rows"]
    assert row["status"] == "ok" and row["train_impl"] == "faithful-step" and row["step_s"] > 0
    assert row["repeats"] == 2
    assert result["notes"] == ["train: faithful step (--train-impl step)"]


@pytest.fixture()
def components():
    return build_arch("preset", "cpu", torch.float32, preset="tiny")


def test_faithful_step_trains_only_the_mlps_through_both_encoders(components):
    batch = bench.make_train_batch(components, 64, seed=0)
    frozen = {n: p.clone() for n, p in components.unet.named_parameters()}
    embedding_1 = components.text_encoder.get_input_embeddings()
    with bench.signal_embeddings(components) as embeddings:
        step = bench.FaithfulTrainStep(components, batch, components.unet, embeddings, seed=0)
        before = [p.detach().clone() for p in step.mlps.parameters()]
        loss = step()
        assert loss == loss and loss >= 0  # finite, not NaN
        after = list(step.mlps.parameters())
        # both MLPs (one per text encoder) received gradient through the frozen encoders and moved
        mlp_params = [sum(1 for _ in m.parameters()) for m in step.mlps]
        changed = [not torch.equal(b, a.detach()) for b, a in zip(before, after)]
        assert any(changed[:mlp_params[0]]) and any(changed[mlp_params[0]:])
    assert components.text_encoder.get_input_embeddings() is embedding_1  # restored
    assert all(torch.equal(p, frozen[n]) for n, p in components.unet.named_parameters())


def test_signal_rows_reach_the_encoder_output(components):
    ids = bench._signal_ids(components.tokenizer, components.text_encoder.config.vocab_size, "cpu")
    assert (ids == 49408).sum() == 1 and (ids == 49409).sum() == 1
    with bench.signal_embeddings(components) as (emb1, _):
        d = components.text_encoder.config.hidden_size
        outs = []
        for seed in (0, 1):
            emb1.rows = torch.randn(1, 2, d, generator=torch.Generator().manual_seed(seed))
            outs.append(components.text_encoder(ids, output_hidden_states=True).hidden_states[-2])
    assert not torch.allclose(outs[0], outs[1])
    # positions before the signal words cannot see them (causal attention)
    first = int((ids[0] == 49408).nonzero())
    assert torch.allclose(outs[0][:, :first], outs[1][:, :first])


def test_variants_are_undone(components):
    unet = components.unet
    processors = {k: type(v) for k, v in unet.attn_processors.items()}
    variant = bench.Variant("mix", torch.bfloat16, attention="default", channels_last=True,
                            grad_ckpt=True)
    with bench.applied(components, variant):
        assert unet.dtype == torch.bfloat16 and components.text_encoder.dtype == torch.bfloat16
        assert {type(v).__name__ for v in unet.attn_processors.values()} == {"AttnProcessor"}
        assert unet.is_gradient_checkpointing
        assert unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert unet.dtype == torch.float32 and components.vae.dtype == torch.float32
    assert {k: type(v) for k, v in unet.attn_processors.items()} == processors
    assert not unet.is_gradient_checkpointing
    assert unet.conv_in.weight.is_contiguous()


def test_identity_mlp_shape_and_final_layernorm():
    mlp = bench.IdentityMLP(768, 1280)
    out = mlp(torch.randn(3, 768))
    assert out.shape == (3, 2, 1280)
    flat = out.flatten(1)
    assert torch.allclose(flat.mean(1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(flat.std(1, unbiased=False), torch.ones(3), atol=1e-3)


def test_bad_section_is_a_usage_error(capsys):
    assert bench.main(["--only", "panel,bogus", "--device", "cpu"]) == 2
    assert "bogus" in capsys.readouterr().err


def test_summarize_checks_the_targets(tmp_path):
    rows = [{"section": "panel", "variant": "baseline", "dtype": "bfloat16", "status": "ok",
             "seconds": 3.1, "peak_gib": 9.0},
            {"section": "panel", "variant": "compile", "dtype": "bfloat16", "status": "ok",
             "seconds": 1.4, "peak_gib": 9.5},
            {"section": "train", "variant": "baseline", "dtype": "bfloat16", "status": "ok",
             "step_s": 0.05, "identity_s": 25.0, "peak_gib": 12.0}]
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"machine": {"gpu": "NVIDIA H200"}, "settings": {"arch": "sdxl-random"},
                                "rows": rows}))
    text = bench.summarize([str(path)])
    assert "NVIDIA H200" in text
    assert "panel s baseline [baseline, bfloat16]: 3.100 (target <= 1.5: MISSES)" in text
    assert "panel s best [compile, bfloat16]: 1.400 (target <= 1.5: MEETS)" in text
    assert "identity s baseline [baseline, bfloat16]: 25.000 (target <= 20: MISSES); peak 12.88 GB" in text


@pytest.mark.slow
def test_gpu_check_script_rehearses_on_cpu(tmp_path):
    """bench/gpu_check.sh end to end in its CPU dry-run mode (~1.5 minutes): a small fake hub
    cache, the sdxl preset's own loader on it (panel + training), then the tiny-preset timings."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(bench.__file__).resolve().parent.parent
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), GPU_CHECK_DRY_RUN="1", GPU_CHECK_PYTHON=sys.executable,
               FAKE_HUB=str(tmp_path / "fake_hub"))
    proc = subprocess.run(["bash", str(root / "bench" / "gpu_check.sh")], env=env, cwd=root,
                          capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["env.txt", "faces.json", "fake_hub.txt", "h200.json",
                                                     "loader.json", "log.txt", "panel.json", "profile.json",
                                                     "summary.txt", "train.json"]
    loader = json.loads((out / "loader.json").read_text())
    assert loader["settings"]["arch"] == "preset" and loader["settings"]["build_s"] > 0
    assert {r["section"] for r in loader["rows"] if r["status"] == "ok"} == {"panel", "train"}
    assert "loading the 'sdxl' models on cpu" in (out / "log.txt").read_text()
    panel = json.loads((out / "panel.json").read_text())
    assert {r["section"] for r in panel["rows"]} == {"flops", "panel"}
    assert all(r["seconds"] > 0 for r in panel["rows"] if r["section"] == "panel" and r["status"] == "ok")
    summary = (out / "summary.txt").read_text()
    assert "panel s baseline" in summary and "identity s baseline" in summary
    profile = json.loads((out / "profile.json").read_text())
    assert {r["variant"] for r in profile["rows"] if r["status"] == "ok"} == {"baseline", "fast-step"}
    assert all(r["wall_ms_per_step"] > 0 and r["gpu_busy_ms_per_step"] is None for r in profile["rows"])
    h200 = json.loads((out / "h200.json").read_text())
    assert h200["train_variant"] == "fast-step" and h200["identity_s"] > h200["train_step_s"] > 0
    assert h200["panel_variant"] == "baseline"  # compile-regional is left out of a CPU dry run
    assert h200["face_pass_s"] > 0 and h200["regional_ratio"] > 0 and h200["commit"]
    assert not h200["meets"]["peak_gib"]  # no CUDA peak on a CPU: never counted as met
    assert h200["fast_step_loss_max_rel_diff"] < 1e-3  # fast vs eager step, same seed, float32 CPU
