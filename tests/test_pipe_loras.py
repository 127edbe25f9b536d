"""Style LoRAs per comic (pipelines/loras.py): a fake kohya-layout SDXL LoRA for the tiny
architecture (bench/fake_checkpoints.py) loaded offline with diffusers' adapter API, on the
shared modules, under the device gate; never fused, gone after the panel."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from bench.fake_checkpoints import write_lora
from configs import RuntimeConfig
from pipelines.generation import (
    ComicRequest,
    GenerationError,
    PanelGenerator,
    PanelSpec,
)
from pipelines.loras import LoraChoice, available_loras, check_loras
from pipelines.project import Project

MODULES = ("text_encoder", "text_encoder_2", "unet", "vae")


@pytest.fixture(scope="module")
def loras_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("loras")
    write_lora(folder / "inked.safetensors", seed=1)
    write_lora(folder / "pastel.safetensors", seed=2, text_encoders=False)
    return folder


@pytest.fixture(scope="module")
def generator(tiny_components, loras_dir):
    """A generator on the SAME shared modules and gate as the app's, reading ``loras_dir``."""
    components = dataclasses.replace(tiny_components,
                                     config=tiny_components.config.replace(loras_dir=str(loras_dir)))
    return PanelGenerator(components)


@pytest.fixture(autouse=True)
def shared_modules_untouched(tiny_components):
    before = {n: {k: v.clone() for k, v in getattr(tiny_components, n).state_dict().items()} for n in MODULES}
    yield
    for n in MODULES:
        after = getattr(tiny_components, n).state_dict()
        assert after.keys() == before[n].keys(), f"{n} kept LoRA layers"
        assert all(torch.equal(v, after[k]) for k, v in before[n].items()), n


def comic(*loras: LoraChoice, seed: int = 3) -> ComicRequest:
    return ComicRequest(panels=(PanelSpec("a quiet street at night"),), seed=seed, steps=2,
                        width=64, height=64, candidates=1, loras=tuple(loras))


def draw(generator, request) -> np.ndarray:
    return np.asarray(next(iter(generator.generate(request))).image, dtype=np.int16)


def test_the_fake_lora_uses_kohya_sdxl_keys(loras_dir):
    keys = load_file(str(loras_dir / "inked.safetensors"))
    assert any(k.startswith("lora_unet_") and k.endswith(".lora_down.weight") for k in keys)
    assert any(k.startswith("lora_te1_text_model_encoder_layers_0_self_attn_q_proj") for k in keys)
    assert any(k.startswith("lora_te2_text_model_") for k in keys)
    assert all(k.endswith((".lora_down.weight", ".lora_up.weight", ".alpha")) for k in keys)
    assert available_loras(loras_dir) == ["inked", "pastel"]


def test_a_lora_changes_pixels_and_is_gone_after_the_comic(generator):
    plain = draw(generator, comic())
    inked = draw(generator, comic(LoraChoice("inked", 1.0)))
    assert np.abs(plain - inked).mean() > 1.0
    assert not np.array_equal(inked, draw(generator, comic(LoraChoice("inked", 0.5))))  # the weight counts
    assert np.array_equal(plain, draw(generator, comic()))  # nothing left behind
    assert np.array_equal(inked, draw(generator, comic(LoraChoice("inked", 1.0))))  # and repeatable
    assert np.array_equal(plain, draw(generator, comic(LoraChoice("inked", 0.0))))  # weight 0 = off


def test_two_loras_mix_with_their_weights(generator):
    both = draw(generator, comic(LoraChoice("inked", 0.8), LoraChoice("pastel", 0.6)))
    assert not np.array_equal(both, draw(generator, comic(LoraChoice("inked", 0.8))))


def test_a_project_with_a_lora_regenerates_pixel_identically(generator):
    request = comic(LoraChoice("inked", 0.7))
    first = draw(generator, request)
    data = Project.from_request(request, generator.config, title="Inked").to_dict()
    assert data["loras"] == [{"name": "inked", "weight": 0.7}]
    again = Project.from_dict(data)
    assert again.request.loras == (LoraChoice("inked", 0.7),)
    assert np.array_equal(first, draw(generator, again.request))


def test_a_lora_the_server_lacks_is_refused_in_one_line(generator, loras_dir):
    with pytest.raises(GenerationError) as info:
        list(generator.generate(comic(LoraChoice("watercolor", 1.0))))
    message = str(info.value)
    assert "\n" not in message and "'watercolor'" in message and "does not have" in message
    for bad in (float("nan"), 5.0):
        with pytest.raises(GenerationError, match="weight"):
            check_loras((LoraChoice("inked", bad),), loras_dir)
    with pytest.raises(GenerationError, match="does not have"):
        check_loras((LoraChoice("inked", 1.0),), None)


def test_two_threads_with_and_without_a_lora_never_see_each_other(generator):
    plain, inked = draw(generator, comic()), draw(generator, comic(LoraChoice("inked", 1.0)))
    results: dict[str, list[np.ndarray]] = {"plain": [], "inked": []}
    errors: list[BaseException] = []

    def visitor(kind: str, request: ComicRequest) -> None:
        try:
            for _ in range(3):
                results[kind].append(draw(generator, request))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=visitor, args=("plain", comic())),
               threading.Thread(target=visitor, args=("inked", comic(LoraChoice("inked", 1.0))))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors
    assert all(np.array_equal(plain, r) for r in results["plain"]) and len(results["plain"]) == 3
    assert all(np.array_equal(inked, r) for r in results["inked"]) and len(results["inked"]) == 3


def test_an_overlapping_training_step_never_runs_while_a_lora_is_loaded(generator, tiny_components):
    """With runtime.overlap_training a training step skips the gate, but not the adapters lock:
    while the UNet runs with the comic's LoRA in it, another thread cannot start a step."""
    overlap = RuntimeConfig(overlap_training=True, cpu_offload=False)
    seen: list[tuple[bool, bool]] = []

    def try_training_step() -> bool:
        got: list[bool] = []

        def attempt() -> None:
            lock = generator.gate.training(overlap)
            ok = lock.acquire(blocking=False)
            if ok:
                lock.release()
            got.append(ok)

        worker = threading.Thread(target=attempt)
        worker.start()
        worker.join()
        return got[0]

    def during_unet(module, args):
        has_lora = any("lora_A" in name for name, _ in module.named_parameters())
        seen.append((has_lora, try_training_step()))

    hook = tiny_components.unet.register_forward_pre_hook(during_unet)
    try:
        draw(generator, comic(LoraChoice("inked", 1.0)))
        draw(generator, comic())
    finally:
        hook.remove()
    with_lora = [could for has, could in seen if has]
    without = [could for has, could in seen if not has]
    assert with_lora and not any(with_lora)  # LoRA in the UNet: no training step can start
    assert without and all(without)          # plain panels still overlap with training


def test_the_cli_refuses_a_missing_lora_before_loading_models(loras_dir, tmp_path, capsys):
    import json

    from pipelines.cli import main

    panels = tmp_path / "panels.json"
    panels.write_text(json.dumps([{"text": "a quiet street at night", "characters": []}]))
    code = main(["generate", "--preset", "tiny", "--panels", str(panels), "--out", str(tmp_path / "out"),
                 "--loras", str(loras_dir), "--lora", "inked:0.5", "--lora", "watercolor"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "'watercolor'" in err and "does not have" in err


def test_the_studio_lists_loras_and_an_opened_project_names_a_missing_one(tiny_components, loras_dir,
                                                                         tmp_path):
    from session import Session, Studio

    config = tiny_components.config.replace(library_dir=str(tmp_path / "library"),
                                            loras_dir=str(loras_dir))
    studio = Studio(config, dataclasses.replace(tiny_components, config=config),
                    examples_dir=tmp_path / "examples", export_root=tmp_path / "exports")
    try:
        assert studio.lora_rows() == [["inked", 0.0], ["pastel", 0.0]]
        settings = studio.settings_from("comic book", [], "", 3, False, 2, 7.5, 64, 64, 1, "", False,
                                        {"data": [["inked", 0.7], ["pastel", 0], ["", 1]]})
        assert settings.loras == (LoraChoice("inked", 0.7),)
        project = Project.from_request(replace_loras(comic(), LoraChoice("watercolor", 0.5),
                                                     LoraChoice("inked", 1.0)), config)
        path = tmp_path / "project.json"
        path.write_text(project.to_json())
        restored = studio.open_project(Session(), str(path))
        missing = [w for w in restored.warnings if "LoRA" in w]
        assert len(missing) == 1 and "'watercolor'" in missing[0] and "\n" not in missing[0]
        assert restored.settings.loras == (LoraChoice("watercolor", 0.5), LoraChoice("inked", 1.0))
        assert studio.lora_rows(restored.settings.loras) == [["inked", 1.0], ["pastel", 0.0],
                                                             ["watercolor", 0.5]]
    finally:
        studio.shutdown()


def replace_loras(request: ComicRequest, *loras: LoraChoice) -> ComicRequest:
    return dataclasses.replace(request, loras=tuple(loras))


def test_a_regional_two_person_panel_gets_the_lora_too(generator):
    from pathlib import Path

    from identities.library import Identity

    def person(name: str, seed: int) -> Identity:
        g = torch.Generator().manual_seed(seed)
        return Identity(name=name, pronouns="", clip_l=torch.randn(2, 32, generator=g) * 0.05,
                        clip_g=torch.randn(2, 64, generator=g) * 0.05, metadata={}, folder=Path("."))

    cast = {"Ada Lovelace": person("Ada Lovelace", 1), "Alan Turing": person("Alan Turing", 2)}

    def two(*loras: LoraChoice) -> np.ndarray:
        request = ComicRequest(panels=(PanelSpec("Ada Lovelace talks to Alan Turing",
                                                 ["Ada Lovelace", "Alan Turing"]),),
                               seed=3, steps=2, width=64, height=64, candidates=1, regional=True,
                               face_pass=False, loras=tuple(loras))
        result = next(iter(generator.generate(request, cast)))
        assert result.regional
        return np.asarray(result.image, dtype=np.int16)

    plain = two()
    inked = two(LoraChoice("inked", 1.0))
    assert np.abs(plain - inked).mean() > 1.0
    assert np.array_equal(plain, two())  # the cached regional view is untouched
