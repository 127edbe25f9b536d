"""Any SDXL checkpoint as the base: ``--base`` / ``model.base`` with a single-file ``.safetensors``.

``bench/fake_checkpoints.py`` writes the tiny components in the ORIGINAL (Stability) key layout,
so diffusers' real ``from_single_file`` conversion runs on them, offline: on the tiny preset
(configs written from the tiny components) and on the sdxl preset (configs and tokenizers of the
cached base, the fake hub of ``bench/fake_hub.py``). Identities record the base's text-encoder
fingerprint (:mod:`models.fingerprint`); one learned on other encoders gets one line saying so.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from bench.fake_checkpoints import write_single_file
from bench.fake_hub import environment, write_fake_hub
from configs import load_config, load_limits
from models.fingerprint import EncoderFingerprint, fingerprint_of, same_encoders
from models.hub_files import ModelUnavailable
from models.loading import (
    build_components,
    component_sizes,
    load_components,
    resolve_sources,
)

MODULES = ("text_encoder", "text_encoder_2", "unet", "vae")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """``seed5``: the tiny components of seed 5; ``other``: seed 5 with scaled token tables."""
    root = tmp_path_factory.mktemp("checkpoints")
    return {"seed5": write_single_file(root / "seed5.safetensors", seed=5),
            "other": write_single_file(root / "other.safetensors", seed=5, perturb=0.2)}


@pytest.fixture(scope="module")
def from_file(checkpoints):
    return build_components(load_config("tiny").with_base(str(checkpoints["seed5"])), face_models=False)


def _equal_modules(a, b, names=MODULES) -> None:
    for name in names:
        left, right = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert left.keys() == right.keys(), name
        for key in left:
            assert torch.equal(left[key], right[key].to(left[key].dtype)), f"{name}.{key}"


def test_the_fake_checkpoint_uses_the_original_key_layout(checkpoints):
    state = load_file(str(checkpoints["seed5"]))
    for key in ("model.diffusion_model.input_blocks.0.0.weight",
                "model.diffusion_model.middle_block.1.proj_in.weight",
                "model.diffusion_model.output_blocks.1.2.conv.weight",
                "model.diffusion_model.label_emb.0.0.weight",
                "first_stage_model.encoder.down.0.block.0.norm1.weight",
                "first_stage_model.decoder.up.3.upsample.conv.weight",
                "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
                "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
                "conditioner.embedders.1.model.text_projection"):
        assert key in state, key
    assert state["first_stage_model.encoder.mid.attn_1.q.weight"].dim() == 4  # 1x1 convolution
    assert not any("down_blocks" in k or "mid_block" in k for k in state)  # no diffusers names left
    assert not any("q_proj" in k for k in state if k.startswith("conditioner.embedders.1."))
    # OpenCLIP's projection is (width, projection): the transpose of transformers' Linear weight
    assert tuple(state["conditioner.embedders.1.model.text_projection"].shape) == (64, 32)


def test_the_tiny_preset_loads_a_single_file_base_offline_weight_for_weight(from_file, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tiny = load_config("tiny")
    reference = build_components(tiny.replace(model=dataclasses.replace(tiny.model, seed=5)),
                                 face_models=False)
    _equal_modules(from_file, reference)
    assert from_file.config.model.base_name.endswith("seed5.safetensors")
    assert from_file.tokenizer_2.pad_token == "!" and from_file.text_encoder.config.eos_token_id == 49407
    default = build_components(tiny, face_models=False)
    assert not torch.equal(default.unet.conv_in.weight, from_file.unet.conv_in.weight)


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    (b"not a safetensors file at all", "is not a readable .safetensors file"),
    ("lora", "is not an SDXL checkpoint"),
])
def test_a_bad_base_is_refused_in_one_line(tmp_path, capsys, content, message):
    import app

    path = tmp_path / "model.safetensors"
    if content == "lora":
        save_file({"lora_unet_down_blocks_0.lora_down.weight": torch.zeros(4, 8)}, str(path))
    elif content is not None:
        path.write_bytes(content)
    load_components.cache_clear()
    assert app.main(["--preset", "tiny", "--base", str(path), "--check"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ") and message in err


def test_the_tiny_preset_refuses_a_repository_base():
    with pytest.raises(ModelUnavailable, match="single-file .safetensors"):
        build_components(load_config("tiny").with_base("someone/some-sdxl"), face_models=False)


def test_the_sdxl_preset_converts_a_single_file_with_the_cached_configs(checkpoints, tmp_path,
                                                                       monkeypatch):
    hf_home, comic = tmp_path / "hf", tmp_path / "comic"
    write_fake_hub(hf_home, comic)
    for key, value in environment(hf_home, comic).items():
        monkeypatch.setenv(key, value)
    config = load_config("sdxl").with_base(str(checkpoints["seed5"]))
    sources = resolve_sources(config)
    assert sources.checkpoint == checkpoints["seed5"]
    header = load_file(str(checkpoints["seed5"]))
    unet = sum(v.numel() for k, v in header.items() if k.startswith("model.diffusion_model."))
    assert component_sizes(config, sources).unet == unet  # the memory check counts the file
    components = build_components(config)
    state = components.unet.state_dict()
    weight = state["conv_in.weight"]  # in the runtime dtype (bfloat16 or float32 on a CPU)
    assert torch.equal(weight, header["model.diffusion_model.input_blocks.0.0.weight"].to(weight.dtype))
    # the preset's separate fp16-fix VAE replaces the checkpoint's (SDXL's overflows in fp16)
    vae = components.vae.encoder.conv_in.weight
    assert not torch.equal(vae, header["first_stage_model.encoder.conv_in.weight"].to(vae.dtype))


def test_the_fingerprint_ignores_precision_and_sees_other_encoders(from_file, checkpoints):
    same = fingerprint_of(copy.deepcopy(from_file.text_encoder).to(torch.bfloat16),
                          copy.deepcopy(from_file.text_encoder_2).half())
    assert same_encoders(from_file.fingerprint, same)
    other = build_components(load_config("tiny").with_base(str(checkpoints["other"])), face_models=False)
    _equal_modules(from_file, other, names=("unet", "vae"))
    assert not same_encoders(from_file.fingerprint, other.fingerprint)
    text = from_file.fingerprint.text()
    assert len(text) <= load_limits().metadata_chars  # survives export and import
    assert same_encoders(EncoderFingerprint.parse(text), from_file.fingerprint)
    assert EncoderFingerprint.parse("v1:1,2;3") is None and EncoderFingerprint.parse("") is None


def test_an_identity_from_other_encoders_says_so_in_one_line(from_file, checkpoints, tmp_path):
    from session import Session, Studio

    other = build_components(load_config("tiny").with_base(str(checkpoints["other"])), face_models=False)
    config = from_file.config.replace(library_dir=str(tmp_path / "library"))
    studio = Studio(config, from_file, examples_dir=tmp_path / "examples",
                    export_root=tmp_path / "exports")
    try:
        library = studio.catalog.library
        d1, d2 = config.model.text_encoder_widths
        for name, components in (("Ada Lovelace", other), ("Alan Turing", from_file)):
            library.add(name, torch.randn(2, d1), torch.randn(2, d2), metadata={
                "base_model": "/models/other.safetensors", "text_encoders": components.fingerprint.text()})
        _, text = studio.identity_details(Session(), "Ada Lovelace")
        assert "base other.safetensors" in text and "retrain Ada Lovelace on this base" in text
        _, text = studio.identity_details(Session(), "Alan Turing")
        assert "base other.safetensors" in text and "retrain" not in text
        note = studio.base_note(library.get("Ada Lovelace"))
        assert note is not None and note.count("\n") == 0
        assert "Ada Lovelace was learned on other.safetensors" in note and "retrain" in note
        assert studio.base_note(library.get("Alan Turing")) is None
        assert studio.base_note(torch.nn.Module()) is None  # no metadata: nothing to compare
        session = Session()
        session.cast = ["Ada Lovelace", "Alan Turing"]
        settings = studio.settings_from("comic book", [], "", 3, False, 1, 7.5, 64, 64, 1, "", False)
        first = next(iter(studio.generate(session, [["Ada Lovelace waves at Alan Turing",
                                                     "Ada Lovelace, Alan Turing", "", ""]], settings)))
        assert [w for w in first.warnings if "retrain" in w] == [note]  # Generate says it once
    finally:
        studio.shutdown()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_an_identity_learned_on_a_single_file_base_records_it(checkpoints, from_file, tmp_path, astronaut):
    from PIL import Image

    from identities.library import IdentityLibrary
    from stableidentity import cli

    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    load_components.cache_clear()
    assert cli.main(["train", "--image", str(photo), "--name", "Ada Lovelace", "--preset", "tiny",
                     "--base", str(checkpoints["seed5"]), "--steps", "2",
                     "--library", str(tmp_path / "lib")]) == 0
    load_components.cache_clear()
    meta = IdentityLibrary(tmp_path / "lib").get("Ada Lovelace").metadata
    assert meta["base_model"] == str(checkpoints["seed5"])
    assert same_encoders(EncoderFingerprint.parse(meta["text_encoders"]), from_file.fingerprint)
