"""runtime.compile (auto | on | off), regional compilation of the UNet's repeated blocks, and the
compile cache in the app's cache folder (models/compilation.py)."""

from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path

import numpy as np
import pytest
import torch

from configs import load_config
from models import loading
from models.compilation import (
    ARTIFACTS_FILE,
    load_compile_artifacts,
    repeated_blocks,
    resolve_compile,
    save_compile_artifacts,
    use_compile_cache,
    warm_compiled,
)
from pipelines.generation import ComicRequest, PanelGenerator, PanelSpec


def test_switch_resolution():
    assert resolve_compile("auto", "cuda", {}) and not resolve_compile("auto", "cpu", {})
    assert not resolve_compile("auto", "cuda", {"SPACES_ZERO_GPU": "true"})  # per-request workers
    assert resolve_compile("on", "cuda", {"SPACES_ZERO_GPU": "true"})
    assert resolve_compile("on", "cpu") and not resolve_compile("off", "cuda")
    assert resolve_compile(True, "cpu") and not resolve_compile(False, "cuda")
    with pytest.raises(ValueError, match="auto, on or off"):
        resolve_compile("yes", "cpu")


def test_presets_compile_on_cuda_only_and_old_booleans_still_load(tmp_path):
    for name in ("sdxl", "tiny"):
        runtime = load_config(name).runtime
        assert (runtime.compile, runtime.compile_scope) == ("auto", "regional")
    path = tmp_path / "old.yaml"
    path.write_text("runtime:\n  compile: true\n")  # an older preset's boolean
    assert load_config(path=path).runtime.compile == "on"
    path.write_text("runtime:\n  compile: off\n")  # YAML 1.1 reads unquoted off as false
    assert load_config(path=path).runtime.compile == "off"


def test_repeated_blocks_are_the_unets_transformer_blocks(tiny_components):
    unet = tiny_components.unet
    blocks = repeated_blocks(unet)
    assert {type(b).__name__ for _, b in blocks} == set(unet._repeated_blocks) == {"BasicTransformerBlock"}
    assert len(blocks) == sum(type(m).__name__ == "BasicTransformerBlock" for m in unet.modules())
    assert all(".transformer_blocks." in name for name, _ in blocks)
    with pytest.raises(ValueError, match="no repeated blocks"):
        repeated_blocks(torch.nn.Linear(2, 2))


def test_regional_compile_compiles_only_the_blocks_and_draws_the_same_panel(tiny_components, monkeypatch):
    # dynamo's eager backend: the product's compile path without Inductor's long CPU compile
    monkeypatch.setattr(loading, "set_compiled", functools.partial(loading.set_compiled, backend="eager"))
    for name in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):  # compiling points these into the cache
        monkeypatch.setenv(name, "/unused/by/eager")
    request = ComicRequest(panels=(PanelSpec("a lighthouse at dusk"),), seed=4, steps=2)
    expected = np.asarray(next(PanelGenerator(tiny_components).generate(request)).image)
    cfg = tiny_components.config
    parts = dataclasses.replace(tiny_components, unet=copy.deepcopy(tiny_components.unet), config=cfg.replace(
        runtime=dataclasses.replace(cfg.runtime, compile="on", compile_scope="regional")))
    generator = PanelGenerator(parts)
    assert generator.compiles
    assert loading.compiled_with(parts.unet) is None  # not the whole UNet
    blocks = repeated_blocks(parts.unet)
    assert all(loading.compiled_with(b) == ("default", "eager") for _, b in blocks)
    others = [m for m in parts.unet.modules() if all(m is not b for _, b in blocks)]
    assert all(loading.compiled_with(m) is None for m in others)
    torch._dynamo.reset()
    assert np.array_equal(np.asarray(next(generator.generate(request)).image), expected)
    # off again: everything back to eager, the shared components never touched
    loading.apply_runtime_switches(parts.unet, parts.vae, dataclasses.replace(parts.config.runtime, compile="off"))
    assert all(loading.compiled_with(b) is None for _, b in blocks)
    assert all(loading.compiled_with(b) is None for _, b in repeated_blocks(tiny_components.unet))


def test_auto_does_not_compile_on_a_cpu(tiny_components):
    assert tiny_components.config.runtime.compile == "auto"
    assert not PanelGenerator(tiny_components).compiles
    assert all(loading.compiled_with(b) is None for _, b in repeated_blocks(tiny_components.unet))


def test_compile_cache_goes_to_the_apps_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("COMIC_CACHE", str(tmp_path))
    env: dict[str, str] = {}
    assert use_compile_cache(environ=env) == tmp_path / "compile" / "inductor"
    assert env["TRITON_CACHE_DIR"] == str(tmp_path / "compile" / "triton")
    mine = {"TORCHINDUCTOR_CACHE_DIR": "/my/own"}  # a user's own setting wins
    assert use_compile_cache(environ=mine) == Path("/my/own")


def test_artifacts_round_trip_and_bad_files_only_cost_a_compile(tmp_path):
    assert not load_compile_artifacts(tmp_path)  # nothing saved yet
    (tmp_path / ARTIFACTS_FILE).write_bytes(b"not a cache")
    assert not load_compile_artifacts(tmp_path)  # unreadable: logged, warm-up compiles as usual
    calls = []
    seconds = warm_compiled(lambda: calls.append(1), tmp_path)
    assert calls == [1] and seconds >= 0
    saved = save_compile_artifacts(tmp_path)
    assert saved is None or (saved.is_file() and load_compile_artifacts(tmp_path))


@pytest.mark.parametrize(("switch", "warmed"), [("auto", False), ("off", False), ("on", True)])
def test_studio_warms_up_when_the_resolved_switch_compiles(tiny_config, monkeypatch, tmp_path, switch, warmed):
    """The Studio's start-up warm-up follows runtime.compile as resolved for the device (auto:
    not on this CPU), with the kept artefacts loaded first."""
    from session import studio

    for name in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name))
    monkeypatch.setenv("COMIC_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(PanelGenerator, "warm_up", lambda self, *a, **k: calls.append(self.compiles) or 0.0)
    loaded = []
    monkeypatch.setattr("models.compilation.load_compile_artifacts", lambda folder=None: loaded.append(1) or False)
    config = tiny_config.replace(runtime=dataclasses.replace(tiny_config.runtime, compile=switch))
    components, message = studio._load_models(config)
    assert message is None and components is not None
    assert calls == ([True] if warmed else []) and loaded == ([1] if warmed else [])
