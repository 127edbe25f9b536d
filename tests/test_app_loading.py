"""The page is served while the models load, and says so until they are ready."""

from __future__ import annotations

import threading
import time

import pytest


def _texts(demo) -> list[str]:
    return [c.get("props", {}).get("value") for c in demo.get_config_file()["components"]
            if isinstance(c.get("props", {}).get("value"), str)]


def test_the_page_says_the_models_are_loading_until_they_are(tiny_config, tmp_path, monkeypatch):
    from models import loading
    from ui.app import build_demo
    from session import ModelsUnavailable, Session, Studio

    release = threading.Event()
    real_load = loading.load_components

    def slow_load(config):  # the real loader, started late: a first run's download takes minutes
        assert release.wait(60)
        return real_load(config)

    monkeypatch.setattr(loading, "load_components", slow_load)
    config = tiny_config.replace(library_dir=str(tmp_path / "library"))
    studio = Studio.create_in_background(config, export_root=tmp_path / "exports")
    try:
        assert studio.loading and studio.load_error is None
        assert "The tiny models are loading" in studio.load_status()
        with pytest.raises(ModelsUnavailable, match="still loading"):
            studio.generator()
        with pytest.raises(ModelsUnavailable, match="still loading"):
            studio.training.check(b"photo", "Ada Lovelace", "she", consent=True)
        assert studio.library_entries(Session()) is not None  # the library works meanwhile
        demo = build_demo(studio)  # the page is served now, saying the models are loading
        assert any("models are loading" in t for t in _texts(demo))
        timers = [c for c in demo.get_config_file()["components"] if c.get("type") == "timer"]
        assert any(t["props"].get("active") for t in timers)  # polls the status while loading

        release.set()
        deadline = time.monotonic() + 60
        while studio.loading and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not studio.loading and studio.load_status() == ""
        assert studio.components().config.name == "tiny"
        assert studio.generator() is not None
        assert not any("models are loading" in t for t in _texts(build_demo(studio)))
    finally:
        release.set()
        studio.shutdown()


def test_a_failed_background_load_shows_its_one_line_error(tmp_path, monkeypatch, capsys):
    from bench.fake_hub import environment, write_fake_hub
    from configs import load_config
    from session import ModelsUnavailable, Studio

    write_fake_hub(tmp_path / "hf", tmp_path / "comic", weights=False)  # a download cut short
    for key, value in environment(tmp_path / "hf", tmp_path / "comic").items():
        monkeypatch.setenv(key, value)
    config = load_config("sdxl").replace(library_dir=str(tmp_path / "library"))
    studio = Studio.create_in_background(config, export_root=tmp_path / "exports")
    try:
        deadline = time.monotonic() + 60
        while studio.loading and time.monotonic() < deadline:
            time.sleep(0.05)
        status = studio.load_status()
        assert status.startswith("**The models could not be loaded:** model "
                                 "'stabilityai/stable-diffusion-xl-base-1.0' is incomplete")
        assert "unet/diffusion_pytorch_model.fp16.safetensors" in status and "\n" not in status
        with pytest.raises(ModelsUnavailable, match="could not be loaded"):
            studio.components()
        assert "error: the models could not be loaded" in capsys.readouterr().err
    finally:
        studio.shutdown()
