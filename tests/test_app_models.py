"""``python app.py --preset tiny --base <single-file checkpoint> --loras DIR`` serves and draws.

A real server (tests/browser/app_server.py) on the fake original-layout checkpoint and the fake
kohya LoRA of bench/fake_checkpoints.py, driven with gradio_client: the Style step lists the
LoRA, a comic with it differs from one without, its project.json names it, and the next comic
without it equals the first again (the LoRA is gone).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio_client")
from browser.app_server import running_app
from gradio_client import Client

from bench.fake_checkpoints import write_lora, write_single_file

pytestmark = pytest.mark.slow

SETTINGS = ["comic book", [], "", 5, False, 2, 7.5, 64, 64, 1, "Models", False]


def table(rows):
    from pipelines.panel_table import HEADERS

    return {"headers": HEADERS, "data": [row + [""] * (len(HEADERS) - len(row)) for row in rows],
            "metadata": None}


def loras(weight: float) -> dict:
    return {"headers": ["LoRA", "weight"], "data": [["inked", weight]], "metadata": None}


def test_the_app_serves_and_draws_on_a_single_file_base_with_a_lora(tmp_path):
    base = write_single_file(tmp_path / "models" / "my-sdxl.safetensors", seed=5)
    write_lora(tmp_path / "loras" / "inked.safetensors", seed=1)
    with running_app(tmp_path / "library", tmp_path / "server.log", "--base", str(base),
                     "--loras", str(tmp_path / "loras")) as url:
        client = Client(url, verbose=False, download_files=True)
        rows = table([["A quiet street at night"]])

        def draw(weight: float):
            gallery, status, _pages, files, _seed, _notes = client.predict(
                rows, *SETTINGS, loras(weight), api_name="/generate")
            assert status.startswith("Done: 1 panel"), status
            return np.asarray(Image.open(gallery[0]["image"]).convert("RGB"), dtype=np.int16), files

        plain, _ = draw(0.0)
        inked, files = draw(1.0)
        assert np.abs(plain - inked).mean() > 1.0
        project = json.loads(Path(next(f for f in files if f.endswith("project.json"))).read_text())
        assert project["loras"] == [{"name": "inked", "weight": 1.0}]
        assert project["model"].endswith("my-sdxl.safetensors")
        again, _ = draw(0.0)
        assert np.array_equal(plain, again)
