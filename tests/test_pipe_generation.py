"""Drawing panels: vanilla-equal pixels without identities, seeds, candidates, redraw, errors."""

from __future__ import annotations

import copy
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.binding import BindingError
from pipelines.generation import (CANDIDATE_SEED_STRIDE, ComicRequest, GenerationError,
                                  PanelGenerator, PanelSpec, UnknownCharacter,
                                  apply_memory_switches, candidate_seed, draw_comic,
                                  panel_generator, panels_from_json)
from pipelines.styles import StyleError
from identities.library import Identity, IdentityLibrary


def person(name: str, seed: int) -> Identity:
    g = torch.Generator().manual_seed(seed)
    return Identity(name=name, pronouns="", clip_l=torch.randn(2, 32, generator=g) * 0.05,
                    clip_g=torch.randn(2, 64, generator=g) * 0.05, metadata={}, folder=Path("."))


ADA, ALAN = person("Ada Lovelace", 1), person("Alan Turing", 2)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A real identity library holding Ada and Alan (the generator reads it by name)."""
    lib = IdentityLibrary(tmp_path_factory.mktemp("library"))
    for who in (ADA, ALAN):
        lib.add(who.name, who.clip_l, who.clip_g)
    return lib


def pixels(image):
    return np.asarray(image, dtype=np.int16)


@pytest.fixture(scope="module")
def generator(tiny_components):
    return panel_generator(tiny_components)


@pytest.fixture(scope="module")
def vanilla(tiny_components):
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline(**tiny_components.pipeline_parts())
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(autouse=True)
def shared_parts_untouched(tiny_components):
    parts = ("text_encoder", "text_encoder_2", "unet", "vae")
    before = {n: {k: v.clone() for k, v in getattr(tiny_components, n).state_dict().items()} for n in parts}
    sizes = (len(tiny_components.tokenizer), len(tiny_components.tokenizer_2))
    yield
    assert (len(tiny_components.tokenizer), len(tiny_components.tokenizer_2)) == sizes == (49408, 49408)
    for n in parts:
        after = getattr(tiny_components, n).state_dict()
        assert before[n].keys() == after.keys()
        assert all(torch.equal(v, after[k]) for k, v in before[n].items()), n


def request(*panels, **settings) -> ComicRequest:
    specs = tuple(p if isinstance(p, PanelSpec) else PanelSpec(*p) if isinstance(p, tuple) else PanelSpec(p)
                  for p in panels)
    return ComicRequest(panels=specs, **settings)


# ----------------------------------------------------------------------------- pixels


def test_identity_free_panels_equal_the_vanilla_pipeline(generator, vanilla, tiny_config):
    gen = tiny_config.generation
    texts = ["a photo of a cat on a roof", "a quiet street at night"]
    results = list(generator.generate(request(*texts, seed=41)))
    assert [(r.index, r.candidate, r.seed) for r in results] == [(0, 0, 41), (1, 0, 42)]
    for result, text in zip(results, texts):
        expected = vanilla(text, negative_prompt=gen.negative_prompt, num_inference_steps=gen.steps,
                           guidance_scale=gen.guidance_scale, width=gen.width, height=gen.height,
                           generator=torch.Generator().manual_seed(result.seed)).images[0]
        assert result.image.size == (gen.width, gen.height)
        assert np.array_equal(pixels(result.image), pixels(expected))
        assert result.prompt == result.bound_prompt == text


def test_same_seed_same_image_other_seed_or_identity_differs(generator, library):
    base = request(("Ada Lovelace reads a book", ("Ada Lovelace",)), seed=7)
    first = next(generator.generate(base, library)).image
    again = next(generator.generate(base, library)).image
    other_seed = next(generator.generate(replace(base, seed=8), library)).image
    other_person = next(generator.generate(base, {"Ada Lovelace": ALAN})).image
    assert np.array_equal(pixels(first), pixels(again))
    assert not np.array_equal(pixels(first), pixels(other_seed))
    assert not np.array_equal(pixels(first), pixels(other_person))


def test_two_identities_in_one_panel(generator, library):
    panel = ("Ada Lovelace and Alan Turing play chess", ("Ada Lovelace", "Alan Turing"))
    result = next(generator.generate(request(panel, style="none", keywords=("comic style",)), library))
    assert result.bound_prompt == "v1* v2* and v3* v4* play chess, comic style"
    assert result.prompt == "Ada Lovelace and Alan Turing play chess, comic style"
    assert result.characters == ("Ada Lovelace", "Alan Turing")
    swapped = next(generator.generate(request(panel, style="none", keywords=("comic style",)),
                                      {"Ada Lovelace": ALAN, "Alan Turing": ADA}))
    assert not np.array_equal(pixels(result.image), pixels(swapped.image))


def test_style_and_negative_prompt_composition(generator, tiny_config):
    result = next(generator.generate(request("a harbor", style="noir", negative_prompt="blurry")))
    assert result.prompt.startswith("a harbor, film noir")
    assert result.negative_prompt.startswith("blurry, ") and "color" in result.negative_prompt
    default_negative = next(generator.generate(request("a harbor"))).negative_prompt
    assert default_negative == tiny_config.generation.negative_prompt


def test_candidates_are_drawn_batched_with_their_own_seeds(generator, library):
    base = request(("Ada Lovelace waves", ("Ada Lovelace",)), seed=3)
    results = list(generator.generate(replace(base, candidates=3), library))
    assert [r.candidate for r in results] == [0, 1, 2]
    assert [r.seed for r in results] == [candidate_seed(3, c) for c in range(3)] == \
        [3, 3 + CANDIDATE_SEED_STRIDE, 3 + 2 * CANDIDATE_SEED_STRIDE]
    images = [pixels(r.image) for r in results]
    assert not np.array_equal(images[0], images[1]) and not np.array_equal(images[1], images[2])
    single = pixels(next(generator.generate(base, library)).image)
    # same noise as a single draw; a batch of 3 may round differently in the last bit
    assert np.abs(single - images[0]).max() <= 2
    again = list(generator.generate(replace(base, candidates=3), library))
    assert all(np.array_equal(pixels(a.image), b) for a, b in zip(again, images))


def test_redraw_reproduces_a_panel_or_draws_it_anew(generator, library):
    comic = request("a red door", ("Alan Turing opens a door", ("Alan Turing",)), seed=10)
    drawn = list(generator.generate(comic, library))
    same = generator.redraw(comic, 1, identities=library)
    assert len(same) == 1 and same[0].index == 1 and same[0].seed == 11
    assert np.array_equal(pixels(same[0].image), pixels(drawn[1].image))
    new = generator.redraw(comic, 1, seed=99, identities=library)[0]
    assert new.seed == 99 and not np.array_equal(pixels(new.image), pixels(drawn[1].image))
    kept = replace(comic, panels=(comic.panels[0], replace(comic.panels[1], seed=99)))
    assert np.array_equal(pixels(list(generator.generate(kept, library))[1].image), pixels(new.image))
    with pytest.raises(GenerationError, match="out of range"):
        generator.redraw(comic, 2)


def test_panels_are_streamed_one_by_one(generator):
    calls = []

    class Spy(PanelGenerator):
        def draw(self, req, panel, matcher=None):
            calls.append(panel.index)
            return super().draw(req, panel, matcher)

    spy = copy.copy(generator)
    spy.__class__ = Spy
    stream = spy.generate(request("one", "two", "three"))
    first = next(stream)
    assert first.index == 0 and calls == [0]
    assert [r.index for r in stream] == [1, 2] and calls == [0, 1, 2]


def test_everything_is_validated_before_drawing(generator, library, monkeypatch):
    monkeypatch.setattr(PanelGenerator, "draw", lambda *a: pytest.fail("drew before validating"))
    cases = [
        (request("fine", ("Grace Hopper smiles", ("Grace Hopper",))), UnknownCharacter, "panel 2: character 'Grace Hopper'"),
        (request(("A B C D E F G H", ("A B", "C D", "E F", "G H"))), GenerationError, "at most 3"),
        (request("x", width=60), GenerationError, "multiple of 8"),
        (request("x", steps=0), GenerationError, "steps"),
        (request("x", candidates=0), GenerationError, "candidates"),
        (request("x", seed=-1), GenerationError, "seed"),
        (request("x", style="vaporwave"), StyleError, "unknown style"),
        (request("x", keywords=("neon",)), StyleError, "unknown style keyword"),
        (request("see v1* here"), BindingError, "reserved word"),
        (request("x", negative_prompt="v2* blurry"), BindingError, "negative prompt contains"),
        (ComicRequest(panels=()), GenerationError, "empty"),
    ]
    for req, error, message in cases:
        with pytest.raises(error, match=message):
            list(generator.generate(req, library))
    wrong = {"Ada Lovelace": replace(ADA, clip_l=torch.zeros(2, 768), clip_g=torch.zeros(2, 1280))}
    with pytest.raises(BindingError, match="another base model"):
        list(generator.generate(request(("Ada Lovelace", ("Ada Lovelace",))), wrong))


def test_panels_json_parsing():
    panels = panels_from_json([{"text": " Ada Lovelace reads. ", "characters": ["Ada Lovelace", "ada lovelace"]}])
    assert panels == (PanelSpec("Ada Lovelace reads.", ("Ada Lovelace",)),)
    assert panels_from_json({"panels": [{"text": "x"}]}) == (PanelSpec("x"),)
    for bad, message in (([], "empty"), ({"a": 1}, "JSON list"), ([{"text": ""}], "panel 1: 'text'"),
                         ([{"text": "x", "characters": "Ada"}], "'characters'"), (["x"], "expected an object")):
        with pytest.raises(GenerationError, match=message):
            panels_from_json(bad)


def test_concurrent_generation_matches_sequential(generator, library):
    reqs = {k: request(("Ada Lovelace sings", ("Ada Lovelace",)), seed=5) for k in "ab"}
    casts = {"a": {"Ada Lovelace": ADA}, "b": {"Ada Lovelace": ALAN}}
    expected = {k: pixels(next(generator.generate(reqs[k], casts[k])).image) for k in "ab"}
    got, start = {}, threading.Barrier(2)

    def worker(key):
        start.wait()
        got[key] = [pixels(next(generator.generate(reqs[key], casts[key])).image) for _ in range(3)]

    threads = [threading.Thread(target=worker, args=(k,)) for k in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for key in "ab":
        assert all(np.array_equal(image, expected[key]) for image in got[key])


def test_generator_is_built_once_per_components(generator, tiny_components):
    assert panel_generator(tiny_components) is generator
    assert generator.pipe.text_encoder is tiny_components.text_encoder
    assert generator.pipe.unet is tiny_components.unet


def test_memory_switches_follow_the_runtime_config(tiny_components, tiny_config):
    from diffusers import StableDiffusionXLPipeline
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    pipe = StableDiffusionXLPipeline(**copy.deepcopy(tiny_components.pipeline_parts()))
    runtime = replace(tiny_config.runtime, vae_tiling=True, vae_slicing=True, attention="default",
                      cpu_offload=True)
    apply_memory_switches(pipe, runtime, torch.device("cpu"))
    assert pipe.vae.use_tiling and pipe.vae.use_slicing
    assert all(isinstance(p, AttnProcessor) for p in pipe.unet.attn_processors.values())
    assert not getattr(pipe, "_all_hooks", None)  # offload needs CUDA: ignored on CPU
    apply_memory_switches(pipe, tiny_config.runtime, torch.device("cpu"))
    assert not pipe.vae.use_tiling and not pipe.vae.use_slicing
    assert all(isinstance(p, AttnProcessor2_0) for p in pipe.unet.attn_processors.values())


def test_draw_comic_lays_out_the_chosen_candidates(generator, library):
    comic = draw_comic(generator, request(("\"Hi!\" Ada Lovelace says.", ("Ada Lovelace",)), "a door",
                                          candidates=2, seed=4),
                       library, title="Hello", choose=lambda results: len(results) - 1)
    assert comic.project.choices == (1, 1)
    assert len(comic.results) == 4 and len(comic.pages) == 1
    assert comic.panels[0] is comic.candidates()[(0, 1)]
    assert comic.project.request.panels[1].seed == 5 and comic.project.title == "Hello"


def test_characters_missing_from_the_text_are_reported(generator, library):
    req = request(("Ada Lovelace waves", ("Ada Lovelace", "Alan Turing")), steps=1)
    _, prepared = generator.prepare(req, library)
    assert prepared[0].unnamed == ("Alan Turing",) and prepared[0].bound_prompt == "v1* v2* waves"
    warnings = []
    draw_comic(generator, req, library, on_warning=warnings.append)
    assert warnings == ["panel 1: 'Alan Turing' is listed but not named in the text, "
                        "so that identity will not appear"]
