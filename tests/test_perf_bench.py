"""bench_sdxl_random's variants are the app's config switches, run through the app's own code.

The GPU run (bench/gpu_check.sh) measures each switch on and off; these tests check, on the CPU
with the tiny preset, that each variant sets exactly its config key, that the panel goes through
``PanelGenerator`` and training through ``StableIdentityTrainer.run`` with the switch in effect,
and that every switch is undone afterwards (the variants share one set of components).
"""

from __future__ import annotations

import functools
import json

import pytest
import torch

import models.loading as loading
from bench import bench_sdxl_random as bench
from bench.arch import build_arch
from stableidentity.trainer import StableIdentityTrainer

EXPECTED_KEYS = {
    "baseline": {},
    "attn-default": {"runtime.attention": "default"},
    "channels-last": {"runtime.channels_last": True},
    "vae-tiling": {"runtime.vae_tiling": True},
    "cpu-offload": {"runtime.cpu_offload": True},
    "compile": {"runtime.compile": "on", "runtime.compile_scope": "whole"},
    "compile-regional": {"runtime.compile": "on"},
    "fast-step": {"train.fast_step": "on"},
    "grad-ckpt": {"train.gradient_checkpointing": True},
    "no-autocast": {"train.mixed_precision": "no"},
    "augment-fresh": {"train.augment_pool": 0},
}


def _flat(config) -> dict:
    return {f"{section}.{key}": value for section in ("runtime", "train")
            for key, value in vars(getattr(config, section)).items()}


@pytest.fixture(scope="module")
def components():
    return build_arch("preset", "cpu", torch.float32, preset="tiny")


@pytest.mark.parametrize("name", sorted(EXPECTED_KEYS))
def test_each_variant_is_one_config_switch(components, name):
    base = bench.make_variant("baseline", torch.float32).config(components.config, "reduce-overhead")
    config = bench.make_variant(name, torch.float32).config(components.config, "reduce-overhead")
    changed = {k: v for k, v in _flat(config).items() if _flat(base)[k] != v}
    assert changed == EXPECTED_KEYS[name]
    assert config.runtime.compile_mode == "reduce-overhead"
    assert set(bench.TRAINER_ONLY) <= set(bench.TRAIN_VARIANTS)


def test_the_baseline_is_the_eager_uncompiled_path(components):
    """Whatever the preset resolves to on this device, the baseline pins compile and the fast
    step off, so each variant is measured against today's eager path."""
    flat = _flat(bench.make_variant("baseline", torch.float32).config(components.config))
    assert (flat["runtime.compile"], flat["train.fast_step"]) == ("off", "off")


def _state(components) -> dict:
    unet = components.unet
    return {"ckpt": unet.is_gradient_checkpointing, "compiled": loading.compiled_with(unet),
            "contiguous": (unet.conv_in.weight.is_contiguous()
                           and components.vae.decoder.conv_in.weight.is_contiguous()),
            "tiling": components.vae.use_tiling,
            "attn": {type(p).__name__ for p in unet.attn_processors.values()}}


def test_train_variants_run_the_apps_trainer_with_the_switch_and_undo_it(components, monkeypatch):
    before = _state(components)
    seen = []
    original_init = StableIdentityTrainer.__init__

    def spy(self, run_components, *args, **kwargs):
        original_init(self, run_components, *args, **kwargs)
        seen.append((run_components.config.train, self, _state(run_components)))

    monkeypatch.setattr(StableIdentityTrainer, "__init__", spy)
    rows = {}
    for name in ("grad-ckpt", "no-autocast", "augment-fresh", "channels-last"):
        rows[name] = bench.run_trainer_variant(StableIdentityTrainer, components,
                                               bench.make_variant(name, torch.float32), 64, 2, 1, 500,
                                               None, 0)
        assert _state(components) == before, name  # undone
    (ckpt_cfg, _, ckpt_state), (mp_cfg, mp_trainer, _), (pool_cfg, pool_trainer, _), (_, _, cl_state) = seen
    assert ckpt_cfg.gradient_checkpointing and ckpt_state["ckpt"]
    assert rows["grad-ckpt"]["gradient_checkpointing"]
    assert mp_cfg.mixed_precision == "no" and mp_trainer.autocast_dtype is None
    assert pool_cfg.augment_pool == 0 and pool_trainer.augment_pool is None
    assert rows["augment-fresh"]["pool_fill_s"] == 0 and rows["augment-fresh"]["train_augment_pool"] is None
    assert rows["grad-ckpt"]["train_augment_pool"] == 64 and rows["grad-ckpt"]["pool_fill_s"] > 0
    assert not cl_state["contiguous"]  # channels-last reached the shared UNet through the loader's function
    for row in rows.values():
        assert row["step_s"] > 0 and row["repeats"] == 8  # one chunk of PREFETCH steps
        assert row["min_s"] <= row["step_s"] <= row["max_s"]


def test_panel_variants_run_the_apps_generator_and_undo(components):
    before = _state(components)
    for name in ("vae-tiling", "attn-default", "channels-last"):
        row = bench.run_panel_variant(components, bench.make_variant(name, torch.float32), 64, 2, 8.5,
                                      "blurry", 1, 1, None, 0)
        assert row["impl"] == "PanelGenerator" and row["seconds"] > 0
        assert row["prompt_cache_hits"] >= 1  # timed panels reuse the warm-up's embeddings
        assert _state(components) == before, name


def test_compile_variant_compiles_the_shared_unet_in_place_and_undoes(components, monkeypatch):
    # dynamo's eager backend: the product's compile path without Inductor's minute-long CPU compile
    monkeypatch.setattr(loading, "set_compiled", functools.partial(loading.set_compiled, backend="eager"))
    compiled_during = []
    original = loading.apply_runtime_switches

    def spy(unet, vae, runtime, *device):
        original(unet, vae, runtime, *device)
        compiled_during.append(loading.compiled_with(unet))

    monkeypatch.setattr(loading, "apply_runtime_switches", spy)
    variant = bench.make_variant("compile", torch.float32)
    row = bench.run_trainer_variant(StableIdentityTrainer, components, variant, 64, 2, 1, 500, None, 0)
    assert row["step_s"] > 0 and compiled_during[0] == ("default", "eager")
    assert loading.compiled_with(components.unet) is None


def test_trainer_only_variants_are_skipped_with_the_faithful_step(tmp_path):
    out = tmp_path / "step.json"
    assert bench.main(["--arch", "preset", "--preset", "tiny", "--smoke", "--device", "cpu",
                       "--only", "train", "--variants", "baseline,no-autocast,augment-fresh",
                       "--train-impl", "step", "--json", str(out)]) == 0
    rows = {r["variant"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["baseline"]["status"] == "ok"
    for name in ("no-autocast", "augment-fresh"):
        assert rows[name]["status"].startswith("skipped")
