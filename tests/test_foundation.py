"""Foundation: presets, the tiny SDXL-shaped components, real tokenization, the loaders."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from diffusers import StableDiffusionXLPipeline

from configs import AppConfig, ConfigError, available_presets, load_config
from models.clip_tokenizer import build_clip_tokenizer
from models.hub_files import ensure_files, sdxl_needs
from models.loading import (ModelUnavailable, fix_pooled_eos, load_diffusion_from_folder,
                               resolve_device, resolve_dtype)
from models.tiny import tiny_text_encoder_2

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- presets

def test_both_presets_load_with_the_reference_numbers():
    assert {"sdxl", "tiny"} <= set(available_presets())
    sdxl = load_config("sdxl")
    assert sdxl.model.pretrained == "stabilityai/stable-diffusion-xl-base-1.0"
    assert sdxl.model.variant == "fp16"
    assert sdxl.model.vae == "madebyollin/sdxl-vae-fp16-fix"
    assert sdxl.model.fr_vit == "jayanta/vit-base-patch16-224-in21k-face-recognition"
    assert sdxl.generation.guidance_scale == 8.5
    assert sdxl.generation.sampler == "dpm_multistep"
    assert (sdxl.train.grad_clip, sdxl.train.weight_decay, sdxl.train.hair_weight) == (1.0, 0.01, 0.1)
    assert (sdxl.train.adam_beta1, sdxl.train.adam_beta2, sdxl.train.adam_epsilon) == (0.9, 0.999, 1e-8)
    assert sdxl.train.resolution == 512 and sdxl.train.num_train_timesteps == 1000
    tiny = load_config("tiny")
    assert tiny.model.kind == "tiny" and tiny.runtime.device == "cpu"
    assert isinstance(tiny, AppConfig) and tiny.source.endswith("tiny.yaml")


def test_environment_variables_choose_the_preset(monkeypatch, tmp_path):
    monkeypatch.setenv("COMIC_PRESET", "tiny")
    monkeypatch.delenv("COMIC_CONFIG", raising=False)
    assert load_config().name == "tiny"
    custom = tmp_path / "mine.yaml"
    custom.write_text("name: mine\ngeneration:\n  steps: 7\n")
    monkeypatch.setenv("COMIC_CONFIG", str(custom))
    config = load_config()
    assert config.name == "mine" and config.generation.steps == 7
    assert config.train.alpha == 0.6  # unspecified keys keep their defaults
    monkeypatch.delenv("COMIC_CONFIG")
    monkeypatch.delenv("COMIC_PRESET")
    assert load_config().name == "sdxl"


@pytest.mark.parametrize("text, key", [
    ("train:\n  steps: -3\n", "train.steps"),
    ("train:\n  alpha: 1.5\n", "train.alpha"),
    ("runtime:\n  dtype: float8\n", "runtime.dtype"),
    ("runtime:\n  cpu_offload: maybe\n", "runtime.cpu_offload"),
    ("generation:\n  width: 'wide'\n", "generation.width"),
    ("generation:\n  stepz: 3\n", "generation.stepz"),
    ("model: 3\n", "model"),
])
def test_a_bad_value_names_the_key_and_the_file(tmp_path, text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path=path)
    message = str(info.value)
    assert key in message and str(path) in message and "\n" not in message


def test_unknown_preset_and_broken_yaml(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'huge'.*sdxl.*tiny"):
        load_config("huge")
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(path=broken)
    with pytest.raises(ConfigError, match="not found"):
        load_config(path=tmp_path / "missing.yaml")


def test_device_and_dtype_resolution(tiny_config):
    device = resolve_device(tiny_config.runtime)
    assert device.type == "cpu"
    assert resolve_dtype(tiny_config.runtime, device) == torch.float32


# ----------------------------------------------------------------------------- tokenizers

def test_real_clip_tokenization_matches_sdxl_ids(tiny_components):
    for tokenizer in (tiny_components.tokenizer, tiny_components.tokenizer_2):
        assert tokenizer("a photo of").input_ids == [49406, 320, 1125, 539, 49407]
        assert tokenizer.model_max_length == 77
        assert len(tokenizer) == 49408
    padded = tiny_components.tokenizer_2("a photo", padding="max_length").input_ids
    assert len(padded) == 77 and padded[-1] == tiny_components.tokenizer_2.convert_tokens_to_ids("!") == 0
    padded_1 = tiny_components.tokenizer("a photo", padding="max_length").input_ids
    assert padded_1[-1] == 49407


def test_added_signal_words_get_new_ids_and_survive_save_load(tmp_path):
    tokenizer = build_clip_tokenizer()
    tokenizer.add_tokens(["v1*", "v2*"])
    ids = tokenizer("a photo of v1* v2*").input_ids
    assert ids == [49406, 320, 1125, 539, 49408, 49409, 49407]
    tokenizer.save_pretrained(tmp_path)
    reloaded = type(tokenizer).from_pretrained(tmp_path, local_files_only=True)
    assert reloaded("a photo of v1* v2*").input_ids == ids


# ----------------------------------------------------------------------------- tiny components

def test_tiny_components_have_sdxl_wiring(tiny_components):
    c = tiny_components
    d1, d2 = c.text_encoder.config.hidden_size, c.text_encoder_2.config.hidden_size
    assert d1 != d2
    unet = c.unet.config
    assert unet.cross_attention_dim == d1 + d2
    assert unet.addition_embed_type == "text_time"
    assert unet.projection_class_embeddings_input_dim == (
        c.text_encoder_2.config.projection_dim + 6 * unet.addition_time_embed_dim)
    assert 2 ** (len(c.vae.config.block_out_channels) - 1) == 8
    assert c.vae.config.scaling_factor == pytest.approx(0.13025)
    assert c.train_scheduler.config.num_train_timesteps == 1000
    assert c.scheduler.config.prediction_type == "epsilon"
    assert type(c.scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert c.fr_vit.config.image_size == 224 and c.fr_vit.config.patch_size == 16
    assert type(c.face_parser).__name__ == "BiSeNet"
    for module in (c.text_encoder, c.text_encoder_2, c.unet, c.vae, c.fr_vit, c.face_parser):
        assert not any(p.requires_grad for p in module.parameters())


def test_tiny_build_is_seeded_and_leaves_global_rng_alone(tiny_config):
    from models.loading import build_components

    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = build_components(tiny_config)
    after = torch.rand(1)
    b = build_components(tiny_config)
    assert torch.equal(expected, after)
    for pa, pb in zip(a.unet.parameters(), b.unet.parameters()):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("size", [(64, 64), (96, 64)])
def test_tiny_sdxl_pipeline_renders_requested_size(tiny_components, size):
    width, height = size
    pipe = StableDiffusionXLPipeline(**tiny_components.pipeline_parts())
    pipe.set_progress_bar_config(disable=True)
    image = pipe("a photo of a cat", num_inference_steps=2, width=width, height=height,
                 generator=torch.Generator().manual_seed(0)).images[0]
    assert image.size == (width, height)


def test_save_pretrained_round_trips_through_the_real_loading_path(tiny_components, tmp_path):
    pipe = StableDiffusionXLPipeline(**tiny_components.pipeline_parts())
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(tmp_path / "sdxl")
    assert ensure_files(str(tmp_path / "sdxl"), sdxl_needs(load_config("tiny").model)) == tmp_path / "sdxl"
    parts = load_diffusion_from_folder(tmp_path / "sdxl", torch.float32)
    reloaded = StableDiffusionXLPipeline(**{k: v for k, v in parts.items() if k != "train_scheduler"})
    reloaded.set_progress_bar_config(disable=True)
    reloaded.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    kwargs = dict(prompt="a red house", num_inference_steps=2, width=64, height=64, output_type="np")
    a = pipe(generator=torch.Generator().manual_seed(1), **kwargs).images
    b = reloaded(generator=torch.Generator().manual_seed(1), **kwargs).images
    assert a.shape == b.shape == (1, 64, 64, 3)
    assert abs(a - b).max() < 1e-5
    assert reloaded.tokenizer_2.pad_token == "!"


# ----------------------------------------------------------------------------- pooled trap

def _pooled(encoder, tokenizer, text):
    ids = tokenizer(text, padding="max_length", return_tensors="pt").input_ids
    with torch.no_grad():
        return encoder(ids).text_embeds[0]


def _pooled_at_end_token(encoder, tokenizer, text):
    ids = tokenizer(text, padding="max_length", return_tensors="pt").input_ids
    end = (ids[0] == tokenizer.eos_token_id).nonzero()[0, 0]
    with torch.no_grad():
        hidden = encoder(ids, output_hidden_states=True).last_hidden_state
        return encoder.text_projection(hidden[0, end])


def test_pooled_output_trap_is_fixed_where_encoders_load(tiny_components):
    tokenizer = build_clip_tokenizer(pad_token="!")
    tokenizer.add_tokens(["v1*", "v2*"])
    torch.manual_seed(0)
    broken = tiny_text_encoder_2(hidden=64, projection_dim=32).eval()
    broken.resize_token_embeddings(len(tokenizer))
    assert broken.config.eos_token_id == 2  # SDXL's hub configs say 2, like this one
    text = "a photo of v1* v2* at the beach"
    # Unfixed: pooling takes argmax(input_ids), i.e. the v2* position, not the end token.
    assert not torch.allclose(_pooled(broken, tokenizer, text), _pooled_at_end_token(broken, tokenizer, text))
    fixed = copy.deepcopy(broken)
    fix_pooled_eos(fixed, tokenizer)
    assert torch.allclose(_pooled(fixed, tokenizer, text), _pooled_at_end_token(fixed, tokenizer, text),
                          atol=1e-6)
    # The loader applies the same fix to both encoders of a preset.
    assert tiny_components.text_encoder.config.eos_token_id == 49407
    assert tiny_components.text_encoder_2.config.eos_token_id == 49407


# ----------------------------------------------------------------------------- no weights, no net

def test_sdxl_without_cache_or_network_fails_fast_and_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    start = time.monotonic()
    with pytest.raises(ModelUnavailable) as info:
        ensure_files("stabilityai/stable-diffusion-xl-base-1.0", sdxl_needs(load_config("sdxl").model))
    assert time.monotonic() - start < 15
    message = str(info.value)
    assert "stable-diffusion-xl-base-1.0" in message and "--preset tiny" in message
    assert "\n" not in message and "Traceback" not in message


def _run(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_app_help_and_bad_config_on_the_command_line(tmp_path):
    result = _run("app.py", "--preset", "tiny", "--help")
    assert result.returncode == 0 and "--preset" in result.stdout and "--library" in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  steps: 0\n")
    result = _run("app.py", "--config", str(bad), "--check")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "train.steps" in result.stderr


def test_sdxl_preset_offline_gives_one_line_on_the_command_line(tmp_path):
    result = _run("app.py", "--preset", "sdxl", "--check",
                  env_extra={"HF_HUB_CACHE": str(tmp_path / "empty"), "COMIC_CACHE": str(tmp_path)})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "not in the Hugging Face cache" in result.stderr
