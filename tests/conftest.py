"""Shared test set-up: offline, tiny preset, one thread per process, shared tiny components."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
for _key in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
    os.environ.pop(_key, None)

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_config():
    """The tiny preset."""
    from configs import load_config

    return load_config("tiny")


@pytest.fixture(scope="session")
def tiny_components(tiny_config):
    """Every tiny component, built once per test session (treat as read-only)."""
    from models.loading import load_components

    return load_components(tiny_config)


@pytest.fixture(scope="session")
def astronaut():
    """skimage's astronaut photo: RGB uint8 (512, 512, 3), one face."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def grace_hopper():
    """matplotlib's Grace Hopper sample: RGB uint8 (600, 512, 3), one face."""
    import numpy as np
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        return np.asarray(Image.open(handle).convert("RGB"))


@pytest.fixture(scope="session")
def group_photo():
    """insightface's 't1' group photo as RGB uint8, six faces."""
    from insightface.data import get_image

    return get_image("t1")[..., ::-1].copy()


@pytest.fixture()
def studio(tiny_config, tiny_components, tmp_path):
    """A Studio on the tiny components, its library, examples and exports under ``tmp_path``;
    shut down after the test."""
    from session import Studio

    config = tiny_config.replace(library_dir=str(tmp_path / "library"))
    studio = Studio(config, tiny_components, examples_dir=tmp_path / "examples",
                    export_root=tmp_path / "exports")
    yield studio
    studio.shutdown()


@pytest.fixture(scope="module")
def shared_generator(tiny_components):
    """A tiny PanelGenerator on the earlier regional path (``character_prompts: false``): one
    shared prompt, signal words masked by a logit bias."""
    from pipelines.generation import PanelGenerator
    from tiny_cast import with_generation

    return PanelGenerator(with_generation(tiny_components, character_prompts=False))
