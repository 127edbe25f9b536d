"""The `sdxl` preset's own loader, offline, on a local Hugging Face cache with the real layouts.

``bench/fake_hub.py`` writes the repositories the preset loads (SDXL base with its fp16 files, the
fp16-fix VAE, the FR-ViT as a ViTForImageClassification pickle, facexlib's BiSeNet in the app's
cache) with small random weights in the real formats. The loader reads every width from those
configs, so nothing in the preset changes: `app.py --check`, a 2-step training and a 1-panel
generation run on it exactly as they would on the downloaded weights.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from bench.fake_hub import FR_VIT_REPO, SDXL_REPO, VAE_REPO, environment, repo_folder, write_fake_hub
from configs import load_config
from models.hub_files import ModelUnavailable, ensure_files, sdxl_needs
from models.loading import build_components, cpu_supports_bf16, load_components, load_diffusion_from_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fake_hub(tmp_path_factory):
    """The small fake cache; the process environment points at it, offline, for this module."""
    root = tmp_path_factory.mktemp("fake_hub")
    hf_home, comic_cache = root / "hf", root / "comic"
    written = write_fake_hub(hf_home, comic_cache)
    env = environment(hf_home, comic_cache)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        load_components.cache_clear()
        yield {"root": root, "env": env, "written": written}
        load_components.cache_clear()


@pytest.fixture(scope="module")
def sdxl_components(fake_hub):
    """The sdxl preset loaded by its own loader from the fake cache (shared by the CLI tests)."""
    return load_components(load_config("sdxl"))


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=240)


def test_the_fake_cache_has_the_hub_layout(fake_hub):
    from huggingface_hub import snapshot_download

    hub = Path(fake_hub["env"]["HF_HUB_CACHE"])
    snapshot = Path(snapshot_download(SDXL_REPO, cache_dir=hub, local_files_only=True))
    assert snapshot == fake_hub["written"][SDXL_REPO]
    assert snapshot.parent.parent == repo_folder(hub, SDXL_REPO)
    commit = (repo_folder(hub, SDXL_REPO) / "refs" / "main").read_text()
    assert snapshot.name == commit and len(commit) == 40
    for name in ("unet/diffusion_pytorch_model.fp16.safetensors", "text_encoder/model.fp16.safetensors",
                 "text_encoder_2/model.fp16.safetensors", "tokenizer_2/vocab.json", "model_index.json"):
        link = snapshot / name
        assert link.is_symlink() and link.resolve().parent.name == "blobs", name
    unet = load_file(str(snapshot / "unet/diffusion_pytorch_model.fp16.safetensors"))
    assert {t.dtype for t in unet.values()} == {torch.float16}
    config = json.loads((snapshot / "unet/config.json").read_text())
    assert config["_class_name"] == "UNet2DConditionModel" and config["addition_embed_type"] == "text_time"
    assert json.loads((snapshot / "tokenizer_2/special_tokens_map.json").read_text())["pad_token"] == "!"
    vae = fake_hub["written"][VAE_REPO]
    assert {t.dtype for t in load_file(str(vae / "diffusion_pytorch_model.safetensors")).values()} == {torch.float32}
    vit = fake_hub["written"][FR_VIT_REPO]
    assert json.loads((vit / "config.json").read_text())["architectures"] == ["ViTForImageClassification"]
    assert "classifier.weight" in torch.load(vit / "pytorch_model.bin", weights_only=True)
    assert fake_hub["written"]["face_parser"].is_file()


def test_the_sdxl_preset_loads_from_the_cache_with_the_cached_widths(sdxl_components, fake_hub):
    c = sdxl_components
    assert c.config.name == "sdxl" and c.device.type == "cpu"
    assert c.dtype == (torch.bfloat16 if cpu_supports_bf16() else torch.float32)
    assert c.unet.dtype == c.dtype and c.text_encoder_2.dtype == c.dtype
    assert (c.text_encoder.config.hidden_size, c.text_encoder_2.config.hidden_size) == (32, 64)
    assert c.unet.config.cross_attention_dim == 96 and c.vae.config.scaling_factor == 0.13025
    assert c.tokenizer("a photo of").input_ids == [49406, 320, 1125, 539, 49407]
    assert c.tokenizer_2.pad_token == "!" and c.tokenizer.pad_token == "<|endoftext|>"
    assert c.text_encoder_2.config.eos_token_id == 49407  # the pooled-output trap fixed on hub configs
    # the FR-ViT holds the checkpoint's weights (the classifier head dropped), as float32
    stored = torch.load(fake_hub["written"][FR_VIT_REPO] / "pytorch_model.bin", weights_only=True)
    assert torch.equal(c.fr_vit.embeddings.cls_token, stored["vit.embeddings.cls_token"])
    assert c.fr_vit.dtype == torch.float32 and not hasattr(c.fr_vit, "classifier")
    assert type(c.scheduler).__name__ == "DPMSolverMultistepScheduler"


def test_the_fr_vit_drops_its_classifier_without_a_load_report(fake_hub, capfd, caplog):
    from transformers import ViTModel

    from models.loading import FaceRecognitionViT

    folder = fake_hub["written"][FR_VIT_REPO]
    caplog.set_level("WARNING")
    ViTModel.from_pretrained(folder, add_pooling_layer=False)
    assert "LOAD REPORT" in caplog.text and "classifier.weight" in caplog.text  # the head is there
    caplog.clear()
    capfd.readouterr()
    vit = FaceRecognitionViT.from_pretrained(folder, add_pooling_layer=False)
    captured = capfd.readouterr()
    assert "LOAD REPORT" not in caplog.text + captured.err + captured.out
    assert "UNEXPECTED" not in caplog.text + captured.err
    assert isinstance(vit, ViTModel)


def test_the_variant_is_decided_per_component_folder(fake_hub, tmp_path):
    folder = tmp_path / "sdxl"
    shutil.copytree(fake_hub["written"][SDXL_REPO], folder, symlinks=False)
    # text_encoder_2 ships only plain float32 weights here, every other folder its fp16 file
    fp16 = folder / "text_encoder_2" / "model.fp16.safetensors"
    state = {k: v.float() for k, v in load_file(str(fp16)).items()}
    state["text_model.final_layer_norm.weight"] = torch.full_like(state["text_model.final_layer_norm.weight"], 0.5)
    save_file(state, str(folder / "text_encoder_2" / "model.safetensors"), metadata={"format": "pt"})
    fp16.unlink()
    model = load_config("sdxl").model
    assert ensure_files(str(folder), sdxl_needs(model)) == folder
    parts = load_diffusion_from_folder(folder, torch.float32, "fp16", None)
    assert torch.all(parts["text_encoder_2"].text_model.final_layer_norm.weight == 0.5)
    unet_file = load_file(str(folder / "unet" / "diffusion_pytorch_model.fp16.safetensors"))
    name, tensor = next(iter(unet_file.items()))
    assert torch.equal(parts["unet"].state_dict()[name], tensor.float())
    # a folder with neither file is refused in one line naming it
    (folder / "text_encoder_2" / "model.safetensors").unlink()
    with pytest.raises(ModelUnavailable, match=r"lacks text_encoder_2/model\.fp16\.safetensors"):
        ensure_files(str(folder), sdxl_needs(model))


def test_a_truncated_weight_file_is_not_trusted(fake_hub, tmp_path):
    folder = tmp_path / "sdxl"
    shutil.copytree(fake_hub["written"][SDXL_REPO], folder, symlinks=False)
    unet = folder / "unet" / "diffusion_pytorch_model.fp16.safetensors"
    data = unet.read_bytes()
    unet.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelUnavailable) as info:
        ensure_files(str(folder), sdxl_needs(load_config("sdxl").model))
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_configs_without_weights_exit_2_naming_the_missing_files(tmp_path):
    hf_home, comic = tmp_path / "hf", tmp_path / "comic"
    write_fake_hub(hf_home, comic, weights=False)
    result = _run(["app.py", "--preset", "sdxl", "--check"], environment(hf_home, comic))
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr
    assert SDXL_REPO in lines[0] and "incomplete" in lines[0]
    for name in ("unet/diffusion_pytorch_model.fp16.safetensors", "text_encoder/model.fp16.safetensors",
                 "text_encoder_2/model.fp16.safetensors"):
        assert name in lines[0]
    assert "--preset tiny" in lines[0]


@pytest.mark.slow
def test_the_sdxl_preset_trains_two_steps_and_draws_one_panel(sdxl_components, fake_hub, astronaut,
                                                              tmp_path, capsys):
    from PIL import Image

    from pipelines.cli import main as pipelines_main
    from stableidentity.cli import main as identity_main

    photo, library, out = tmp_path / "ada.png", tmp_path / "library", tmp_path / "comic"
    Image.fromarray(astronaut).save(photo)
    status = identity_main(["train", "--preset", "sdxl", "--image", str(photo), "--name", "Ada Lovelace",
                            "--pronouns", "she", "--steps", "2", "--library", str(library)])
    err = capsys.readouterr().err
    assert status == 0, err[-2000:]
    panels = tmp_path / "panels.json"
    panels.write_text(json.dumps([{"text": "Ada Lovelace reads a letter by the window.",
                                   "characters": ["Ada Lovelace"]}]))
    status = pipelines_main(["generate", "--preset", "sdxl", "--panels", str(panels), "--library",
                             str(library), "--steps", "2", "--width", "256", "--height", "256",
                             "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 0, err[-2000:]
    panel = Image.open(out / "panel_01.png")
    assert panel.size == (256, 256)
    assert (out / "project.json").is_file()
    assert load_components(load_config("sdxl")) is sdxl_components  # loaded once, reused


def test_app_check_loads_the_sdxl_preset_from_the_cache(fake_hub, capsys, caplog):
    import app

    load_components.cache_clear()  # a real load, not the shared one
    assert app.main(["--preset", "sdxl", "--check"]) == 0
    captured = capsys.readouterr()
    dtype = "bfloat16" if cpu_supports_bf16() else "float32"
    assert f"preset 'sdxl' ready on cpu (torch.{dtype})" in captured.out
    assert "LOAD REPORT" not in captured.err + caplog.text


def test_app_check_refuses_in_one_line_when_memory_is_short(fake_hub, monkeypatch, capsys):
    import app
    from models import memory

    monkeypatch.setattr(memory, "available_bytes", lambda device: 2_000_000)
    load_components.cache_clear()
    assert app.main(["--preset", "sdxl", "--check"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: the 'sdxl' preset needs about")
    assert "of RAM" in err and "but 0.0 GB is available" in err and "--preset tiny" in err
    with pytest.raises(memory.InsufficientMemory):
        build_components(load_config("sdxl"))
