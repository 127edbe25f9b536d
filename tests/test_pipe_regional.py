"""Several people in one panel: places, regional cross-attention, the identity face pass."""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import models.loading as loading
from models.compilation import repeated_blocks
from pipelines.face_pass import (FaceJob, IdentityMatcher, crop_box, face_mask, faces_caption,
                                 match_faces)
from pipelines.generation import ComicRequest, PanelGenerator, PanelSpec, panel_generator
from pipelines.panel_table import panels_from_rows, rows_from_panels
from pipelines.project import GenerationError, Project, ProjectError
from pipelines.regional import attention_resolutions, region_weights
from pipelines.regions import (NAMED_PLACES, PlaceError, auto_places, panel_regions, parse_place,
                               split_places)
from tiny_cast import CAST, pixels, with_generation


TWO = PanelSpec("Alan Turing and Ada Lovelace play chess.", ("Ada Lovelace", "Alan Turing"))
THREE = PanelSpec("Ada Lovelace, Alan Turing and Grace Hopper talk.",
                  ("Ada Lovelace", "Alan Turing", "Grace Hopper"), places=("right", "0,0,0.45,1"))


@pytest.fixture(scope="module")
def generator(tiny_components):
    return panel_generator(tiny_components)


# ----------------------------------------------------------------------------- places


def test_places_parse_and_auto_layout():
    assert parse_place("Left") == NAMED_PLACES["left"] and parse_place("centre") == NAMED_PLACES["center"]
    assert parse_place("auto") is None and parse_place(" ") is None
    assert parse_place("0.1, 0, 0.5,1") == (0.1, 0.0, 0.5, 1.0)
    for bad, words in (("top", "not left"), ("0,0,1", "not left"), ("0,0,a,1", "four numbers"),
                       ("0,0,1.5,1", "between 0 and 1"), ("0.5,0,0.2,1", "x0 < x1")):
        with pytest.raises(PlaceError, match=words):
            parse_place(bad)
    assert auto_places(1) == [(0.0, 0.0, 1.0, 1.0)]
    left, right = auto_places(2)
    assert left[0] == 0 and right[2] == 1 and left[2] == right[0] == 0.5  # touching halves
    thirds = auto_places(3)
    assert [b[0] for b in thirds] == sorted(b[0] for b in thirds) and thirds[0][2] == thirds[1][0]
    assert auto_places(2, sentence_order=[1, 0]) == [right, left]  # named second -> right
    assert panel_regions(("auto", "0,0.5,1,1"), 2) == [left, (0.0, 0.5, 1.0, 1.0)]
    assert split_places("left; 0.5,0,1,1 ;auto") == ("left", "0.5,0,1,1")


def test_places_in_panels_projects_and_the_table(tiny_config):
    spec = PanelSpec.from_dict({"text": "Ada Lovelace meets Alan Turing.",
                                "characters": ["Ada Lovelace", "Alan Turing"], "places": ["Right", "centre"]})
    assert spec.places == ("right", "center")
    old = PanelSpec.from_dict({"text": "Ada Lovelace reads.", "characters": ["Ada Lovelace"]})
    assert old.places == () and "places" not in old.to_dict()  # files without places still read
    for places, words in ((["left", "right"], "2 places for 1"), (["up"], "'Ada Lovelace': place 'up'"),
                          ("left", None)):
        data = {"text": "Ada Lovelace reads.", "characters": ["Ada Lovelace"], "places": places}
        if words is None:
            assert PanelSpec.from_dict(data).places == ("left",)
            continue
        with pytest.raises(GenerationError, match=words) as info:
            PanelSpec.from_dict(data, 2)
        assert str(info.value).startswith("panel 3:") and "\n" not in str(info.value)
    project = Project.from_request(ComicRequest(panels=(spec, old)), tiny_config)
    data = json.loads(project.to_json())
    assert data["panels"][0]["places"] == ["right", "center"] and "places" not in data["panels"][1]
    assert data["regional"] is True and data["face_pass"] is True
    assert Project.from_dict(data) == project
    legacy = {k: v for k, v in data.items() if k not in ("regional", "face_pass")}
    legacy["panels"] = [{k: v for k, v in p.items() if k != "places"} for p in data["panels"]]
    assert Project.from_dict(legacy).request.panels[0].places == ()
    with pytest.raises(ProjectError, match="panel 1: 'Ada Lovelace': place"):
        Project.from_dict({**data, "panels": [{**data["panels"][0], "places": ["nowhere"]}]})
    rows = rows_from_panels([spec, old])
    assert rows[0][3] == "right; center" and rows[1][3] == ""
    assert panels_from_rows(rows) == (spec, old)
    assert panels_from_rows([["Ada Lovelace reads.", "Ada Lovelace", ""]])[0].places == ()  # 3 cells
    with pytest.raises(GenerationError, match="row 1: 'Ada Lovelace': place 'nowhere'"):
        panels_from_rows([["Ada Lovelace reads.", "Ada Lovelace", "", "nowhere"]])
    with pytest.raises(GenerationError, match="row 2: 2 places for 1 character"):
        panels_from_rows([["A cat.", "", "", ""], ["Ada Lovelace reads.", "Ada Lovelace", "", "left; right"]])


def test_prepare_lays_out_by_sentence_order_and_finds_signal_tokens(generator):
    request, prepared = generator.prepare(ComicRequest(panels=(TWO, THREE)), CAST)
    two, three = prepared
    left, right = auto_places(2)
    assert two.regions == (right, left)  # Alan is named first
    ids = generator.binder.tokenizer(two.bound_prompt, padding="max_length", max_length=77,
                                     truncation=True).input_ids
    for i, positions in enumerate(two.tokens):
        assert [ids[p] for p in positions] == list(generator.binder.token_ids[2 * i: 2 * i + 2])
    assert three.regions == (NAMED_PLACES["right"], (0.0, 0.0, 0.45, 1.0), auto_places(3)[2])


# ----------------------------------------------------------------------------- regional attention


def region_masses(capture, panel, guidance: bool, images: int):
    """Per captured call and character: (mass of its tokens outside its region, inside)."""
    out = []
    for call in capture:
        cells = call["cells"]
        (height, width), = [s for s in attention_resolutions((8, 8), 2) if s[0] * s[1] == cells]
        probs = call["probs"][images if guidance else 0:]  # the conditional rows
        for i, (positions, region) in enumerate(zip(panel.tokens, panel.regions)):
            outside = region_weights(region, height, width, 0.05) == 0
            mass = probs[:, :, list(positions)].sum(dim=-1)  # (rows, cells)
            out.append((i, mass[:, outside], mass[:, ~outside]))
    return out


@pytest.mark.parametrize("panel,guidance,candidates", [(TWO, 8.5, 2), (THREE, 1.0, 1)])
def test_signal_tokens_have_exactly_zero_attention_outside_their_region(shared_generator, panel, guidance,
                                                                      candidates):
    generator = shared_generator
    request = ComicRequest(panels=(panel,), seed=4, guidance_scale=guidance, candidates=candidates)
    resolved, (prepared,) = generator.prepare(request, CAST)
    _, processor = generator._regional_pipe()
    processor.capture = []
    try:
        results = generator.draw(resolved, prepared)
    finally:
        capture, processor.capture = processor.capture, None
    assert all(r.regional for r in results) and processor.biases == {}  # cleared after the call
    assert capture, "the regional processor was not called"
    masses = region_masses(capture, prepared, guidance > 1, candidates)
    assert {i for i, _, _ in masses} == set(range(len(panel.characters)))
    for i, outside, inside in masses:
        assert outside.numel() and torch.count_nonzero(outside) == 0, f"character {i} leaks"
        assert float(inside.min()) > 0  # and it is seen inside its region
    if guidance > 1:  # unconditional rows: no bias, the same softmax as plain attention
        assert all(call["probs"].shape[0] == 2 * candidates for call in capture)


def test_one_character_and_switched_off_panels_are_todays_pixels(generator, tiny_components):
    from diffusers import StableDiffusionXLPipeline

    vanilla = StableDiffusionXLPipeline(**{**tiny_components.pipeline_parts(),
                                           "tokenizer": generator.binder.tokenizer,
                                           "tokenizer_2": generator.binder.tokenizer_2})
    vanilla.set_progress_bar_config(disable=True)
    processors = dict(tiny_components.unet.attn_processors)
    one = PanelSpec("Ada Lovelace reads by the window.", ("Ada Lovelace",))
    for panel, regional in ((one, True), (TWO, False)):
        request = ComicRequest(panels=(panel,), seed=9, regional=regional)
        resolved, (prepared,) = generator.prepare(request, CAST)
        embeds = generator.binder.encode(prepared.bound_prompt, prepared.cast, prepared.negative_prompt)
        expected = vanilla(**embeds.as_kwargs(), num_inference_steps=resolved.steps,
                           guidance_scale=resolved.guidance_scale, width=64, height=64,
                           generator=torch.Generator().manual_seed(9)).images[0]
        result = next(generator.generate(request, CAST))
        assert not result.regional and np.array_equal(pixels(result.image), pixels(expected))
    drawn = next(generator.generate(ComicRequest(panels=(TWO,), seed=9), CAST))
    assert drawn.regional and not np.array_equal(pixels(drawn.image), pixels(result.image))
    again = next(generator.generate(ComicRequest(panels=(TWO,), seed=9), CAST))
    assert np.array_equal(pixels(drawn.image), pixels(again.image))  # same seed, same pixels
    after = tiny_components.unet.attn_processors  # the shared UNet never saw the regional processor
    assert after.keys() == processors.keys() and all(after[k] is v for k, v in processors.items())


@pytest.mark.parametrize("sampler", ["euler", "ddim"])
def test_regional_panels_with_every_sampler(tiny_components, sampler):
    base = tiny_components.scheduler
    parts = dataclasses.replace(tiny_components, scheduler=loading.make_sampler(sampler, base))
    gen = PanelGenerator(parts)
    request = ComicRequest(panels=(TWO,), seed=2, candidates=2)
    first, second = [pixels(r.image) for r in gen.generate(request, CAST)]
    assert first.shape == (64, 64, 3) and not np.array_equal(first, second)
    assert np.array_equal(first, pixels(next(gen.generate(request, CAST)).image))


@pytest.mark.slow
@pytest.mark.parametrize("scope", ["regional", "whole"])
def test_compiled_regional_view_draws_the_same_pixels_without_recompiling(tiny_components, monkeypatch, scope):
    import copy

    import torch._dynamo

    expected = [pixels(next(panel_generator(tiny_components).generate(
        ComicRequest(panels=(replace(TWO, places=places),), seed=6), CAST)).image)
        for places in ((), ("0,0,0.5,0.5", "0.5,0.5,1,1"))]
    monkeypatch.setattr(loading, "set_compiled", functools.partial(loading.set_compiled, backend="eager"))
    cfg = tiny_components.config
    parts = dataclasses.replace(tiny_components, unet=copy.deepcopy(tiny_components.unet), config=cfg.replace(
        runtime=dataclasses.replace(cfg.runtime, compile="on", compile_scope=scope)))
    gen = PanelGenerator(parts)
    assert gen._regional is None and gen.compiles
    torch._dynamo.reset()
    gen.warm_up()  # with compile: the regional view is built and traced at start-up too
    pipe, _ = gen._regional_pipe()
    assert pipe.unet is gen._regional[0] is not parts.unet
    if scope == "whole":
        assert loading.compiled_with(pipe.unet) == ("default", "eager")
    else:  # the view's copied blocks are compiled on their own (with the regional processor)
        assert loading.compiled_with(pipe.unet) is None
        view_blocks = repeated_blocks(pipe.unet)
        assert view_blocks and all(loading.compiled_with(b) == ("default", "eager") for _, b in view_blocks)
        shared = {id(b) for _, b in repeated_blocks(parts.unet)}
        assert not shared & {id(b) for _, b in view_blocks}  # blocks holding attn2 are copies
    with torch._dynamo.config.patch(error_on_recompile=True):
        for want, places in zip(expected, ((), ("0,0,0.5,0.5", "0.5,0.5,1,1"))):
            request = ComicRequest(panels=(replace(TWO, places=places),), seed=6)
            assert np.array_equal(pixels(next(gen.generate(request, CAST)).image), want)


# ----------------------------------------------------------------------------- the face pass


def test_face_pass_geometry_and_matching():
    assert crop_box((10, 10, 20, 20), 0.5, 64, 64) == (5, 5, 25, 25)
    assert crop_box((50, 0, 64, 14), 0.5, 64, 64) == (36, 0, 64, 28)  # shifted inside the panel
    alpha = face_mask(20, (4.5, 4.5, 14.5, 14.5))  # a face of half the crop, centred
    assert alpha[10, 10] == 1 and (alpha[[0, -1], :] == 0).all() and (alpha[:, [0, -1]] == 0).all()
    boxes = [(40, 10, 56, 26), (4, 10, 20, 26)]
    jobs = match_faces(boxes, ["Ada", "Alan"], auto_places(2), (64, 64))
    assert [(j.name, j.box[0], j.matched_by) for j in jobs] == [("Ada", 4, "place"), ("Alan", 40, "place")]
    refs = {"Ada": np.array([0.0, 1.0]), "Alan": np.array([1.0, 0.0])}
    jobs = match_faces(boxes, ["Ada", "Alan"], auto_places(2), (64, 64),
                       embeddings=np.array([[0.1, 1.0], [1.0, 0.2]]), references=refs)
    assert [(j.name, j.box[0], j.matched_by) for j in jobs] == [("Ada", 40, "similarity"),
                                                                 ("Alan", 4, "similarity")]
    assert match_faces(boxes[:1], ["Ada", "Alan"], auto_places(2), (64, 64))[0].name == "Alan"
    assert faces_caption([], 64) == ""


def test_face_pass_redraws_given_boxes_and_nothing_else(generator):
    request = ComicRequest(panels=(TWO,), seed=3)
    resolved, (prepared,) = generator.prepare(request, CAST)
    image = next(generator.generate(replace(request, face_pass=False), CAST)).image
    jobs = [FaceJob(0, "Ada Lovelace", (40.0, 10.0, 56.0, 26.0)), FaceJob(1, "Alan Turing", (4.0, 20.0, 20.0, 36.0))]
    out, edits = generator.face_pass(resolved, prepared, image, 3, jobs=jobs)
    again, _ = generator.face_pass(resolved, prepared, image, 3, jobs=jobs)
    assert np.array_equal(pixels(out), pixels(again))  # same seed, same pixels
    before, after = pixels(image), pixels(out)
    inside = np.zeros(before.shape[:2], bool)
    for edit in edits:
        x0, y0, x1, y1 = edit.crop
        inside[y0:y1, x0:x1] = True
        assert np.abs(after[y0:y1, x0:x1] - before[y0:y1, x0:x1]).max() > 0
    assert [e.name for e in edits] == ["Ada Lovelace", "Alan Turing"] and (~inside).any()
    assert np.array_equal(before[~inside], after[~inside])
    assert faces_caption(edits, 64) == "left face: Alan Turing · right face: Ada Lovelace"
    from session import DrawnPanel  # the app's panel card says which face is whose

    result = replace(next(generator.generate(request, CAST)), image=out, faces=tuple(edits))
    card = DrawnPanel(text=TWO.text, results=[result], scores=[None])
    assert card.faces_caption == "left face: Alan Turing · right face: Ada Lovelace"


def test_face_pass_on_a_real_photo_detects_matches_and_keeps_the_rest(generator, tiny_components,
                                                                      astronaut, grace_hopper):
    """Two real faces side by side, characters listed against their places: matching by
    identity (dlib recogniser, Hungarian) beats place order; only the crops change."""
    from faces.similarity import FaceSimilarity

    left = np.asarray(Image.fromarray(astronaut).resize((256, 256)))
    right = np.asarray(Image.fromarray(grace_hopper[:512]).resize((256, 256)))
    photo = Image.fromarray(np.concatenate([left, right], axis=1))
    panel = PanelSpec("Ada Lovelace and Alan Turing pose.", ("Ada Lovelace", "Alan Turing"))
    request = ComicRequest(panels=(panel,), seed=1, width=512, height=256)
    resolved, (prepared,) = generator.prepare(request, CAST)
    by_place = generator.find_faces(resolved, prepared, photo)
    assert [(j.name, j.matched_by) for j in by_place] == [("Ada Lovelace", "place"), ("Alan Turing", "place")]
    assert by_place[0].box[0] < 256 <= by_place[1].box[0]
    config = tiny_components.config.face
    similarity = FaceSimilarity.from_config(config, detector=tiny_components.face_detector)
    references = {"Ada Lovelace": similarity.reference(right, aligned=False),
                  "Alan Turing": similarity.reference(left, aligned=False)}
    matcher = IdentityMatcher(similarity, references)
    jobs = generator.find_faces(resolved, prepared, photo, matcher)
    assert [(j.name, j.matched_by) for j in jobs] == [("Ada Lovelace", "similarity"), ("Alan Turing", "similarity")]
    assert jobs[0].box[0] >= 256 > jobs[1].box[0]  # Ada is the face on the right
    from bench.eval_multi import score_cast

    (own_ada, leak_ada), (own_alan, leak_alan) = score_cast(
        similarity, photo, np.stack([references["Ada Lovelace"], references["Alan Turing"]]))
    assert own_ada > leak_ada and own_alan > leak_alan  # each face is most like its own identity
    out, edits = generator.face_pass(resolved, prepared, photo, 1, matcher)
    inside = np.zeros((256, 512), bool)
    for edit in edits:
        x0, y0, x1, y1 = edit.crop
        inside[y0:y1, x0:x1] = True
    assert len(edits) == 2 and np.array_equal(pixels(photo)[~inside], pixels(out)[~inside])
    assert not np.array_equal(pixels(photo)[inside], pixels(out)[inside])


def test_face_pass_switch_and_strength(tiny_components, generator):
    request = ComicRequest(panels=(TWO,), seed=3)
    resolved, (prepared,) = generator.prepare(request, CAST)
    image = Image.new("RGB", (64, 64), (128, 100, 90))
    jobs = [FaceJob(0, "Ada Lovelace", (20.0, 20.0, 40.0, 40.0))]
    off = PanelGenerator(with_generation(tiny_components, face_pass_strength=0.0))
    same, edits = off.face_pass(resolved, prepared, image, 3, jobs=jobs)
    assert same is image and edits == []
    drawn = next(generator.generate(replace(request, face_pass=False), CAST))
    assert drawn.faces == ()


# ----------------------------------------------------------------------------- the CLI


@pytest.mark.slow
def test_cli_draws_a_two_character_panel_with_places(tmp_path, capsys):
    from pipelines.cli import main
    from identities.library import IdentityLibrary

    library = IdentityLibrary(tmp_path / "library")
    for identity in list(CAST.values())[:2]:
        library.add(identity.name, identity.clip_l, identity.clip_g)
    panels = tmp_path / "panels.json"
    panels.write_text(json.dumps([{"text": TWO.text, "characters": list(TWO.characters),
                                   "places": ["right", "0,0,0.5,1"]}]), encoding="utf-8")
    common = ["generate", "--panels", str(panels), "--preset", "tiny", "--library", str(tmp_path / "library"),
              "--seed", "4"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "panel 1/1" in err and ", regional" in err and "Traceback" not in err
    saved = json.loads((tmp_path / "a" / "project.json").read_text())
    assert saved["panels"][0]["places"] == ["right", "0,0,0.5,1"] and saved["regional"] and saved["face_pass"]
    assert main([*common, "--out", str(tmp_path / "b"), "--no-regional", "--no-face-pass"]) == 0
    assert ", regional" not in capsys.readouterr().err
    plain = json.loads((tmp_path / "b" / "project.json").read_text())
    assert plain["regional"] is False and plain["face_pass"] is False
    a, b = (pixels(Image.open(tmp_path / d / "panel_01.png")) for d in ("a", "b"))
    assert not np.array_equal(a, b)
    panels.write_text(json.dumps([{"text": TWO.text, "characters": list(TWO.characters),
                                   "places": ["upstairs"]}]), encoding="utf-8")
    assert main([*common, "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: panel 1: 'Ada Lovelace': place 'upstairs' is not left, center, right, auto " \
                  "or a box x0,y0,x1,y1 in 0-1 units"


def test_the_inpainting_pipeline_shares_modules_and_never_casts_them(tiny_components):
    import copy

    names = ("unet", "vae", "text_encoder", "text_encoder_2")
    parts = dataclasses.replace(tiny_components, **{n: copy.deepcopy(getattr(tiny_components, n)).to(torch.bfloat16)
                                                    for n in names})
    gen = PanelGenerator(parts)
    inpaint = gen._inpaint_pipe()
    for name in names:  # from_pipe would cast everything to float32 unless given the dtype
        assert getattr(inpaint, name) is getattr(parts, name)
        assert {p.dtype for p in getattr(parts, name).parameters()} == {torch.bfloat16}, name


@pytest.mark.slow
def test_eval_identity_multi_reports_every_cast_size_and_variant(tmp_path, capsys):
    from bench.eval_identity import main

    out = tmp_path / "multi.json"
    assert main(["--preset", "tiny", "--multi", "--limit", "1", "--clip-model", "none", "--quiet",
                 "--library", str(tmp_path / "empty"), "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "max_leak" in table and "regional+face" in table
    payload = json.loads(out.read_text())
    assert [(r["cast"], r["variant"]) for r in payload["rows"]] == [
        (k, v) for k in (2, 3) for v in ("plain", "regional-shared", "regional", "regional+face")]
    assert len(payload["faces"]) == 4 * (2 * 2 + 3)  # windows of 2 (two groups) and of 3, one prompt


@pytest.mark.slow
def test_the_app_draws_a_two_character_panel_with_places_and_the_face_pass_switch(
        tiny_config, tiny_components, tmp_path, astronaut, grace_hopper):
    from session import Session, Studio

    config = tiny_config.replace(library_dir=str(tmp_path / "library"))
    studio = Studio(config, tiny_components, examples_dir=tmp_path / "examples",
                    export_root=tmp_path / "exports")
    try:
        for (name, identity), face in zip(list(CAST.items())[:2], (astronaut, grace_hopper)):
            studio.catalog.library.add(name, identity.clip_l, identity.clip_g, pronouns="they", face=face)
        session = Session()
        for name in ("Ada Lovelace", "Alan Turing"):
            studio.add_to_cast(session, name)
        rows = [[TWO.text, "Ada Lovelace, Alan Turing", "", "right; left"]]
        settings = studio.settings_from("comic book", [], "", 4, False, 4, 7.5, 64, 64, 1, "", False)
        *_, last = studio.generate(session, rows, settings)
        assert last.done
        comic = session.comic
        assert comic.request.panels[0].places == ("right", "left") and comic.request.face_pass is False
        assert comic.panels[0].results[0].regional
        saved = json.loads(Path(next(f for f in comic.files if f.endswith("project.json"))).read_text())
        assert saved["panels"][0]["places"] == ["right", "left"] and saved["face_pass"] is False
        matcher = studio._matcher(studio.identities_for(session, ["Ada Lovelace", "Alan Turing"]),
                                  ["Ada Lovelace", "Alan Turing"])
        assert matcher is not None and set(matcher.references) == {"Ada Lovelace", "Alan Turing"}
        restored = studio.open_project(Session(), next(f for f in comic.files if f.endswith(".zip")))
        assert restored.rows[0][3] == "right; left" and restored.settings.face_pass is False
    finally:
        studio.shutdown()


def test_regional_view_keeps_an_accelerate_hook_on_the_unet(tiny_components):
    """Model CPU offload puts an accelerate hook on the UNet (instance ``forward``): the view
    must run its own modules through that hook, not the original's."""
    import copy

    from accelerate.hooks import ModelHook, add_hook_to_module

    class Counting(ModelHook):
        calls = 0

        def pre_forward(self, module, *args, **kwargs):
            Counting.calls += 1
            return args, kwargs

    request = ComicRequest(panels=(TWO,), seed=8)
    expected = pixels(next(panel_generator(tiny_components).generate(request, CAST)).image)
    plain = pixels(next(panel_generator(tiny_components).generate(replace(request, regional=False), CAST)).image)
    assert not np.array_equal(expected, plain)  # so equal pixels below prove the view ran
    unet = copy.deepcopy(tiny_components.unet)
    add_hook_to_module(unet, Counting())
    gen = PanelGenerator(dataclasses.replace(tiny_components, unet=unet))
    assert np.array_equal(pixels(next(gen.generate(request, CAST)).image), expected)
    assert Counting.calls == tiny_components.config.generation.steps * 1  # one UNet call per step


def test_concurrent_regional_and_plain_panels_keep_their_pixels(generator):
    """One regional view per generator: panels from several threads (regional with other
    places, and plain) draw exactly what they draw alone."""
    import threading

    requests = [ComicRequest(panels=(TWO,), seed=11), ComicRequest(panels=(THREE,), seed=12),
                ComicRequest(panels=(TWO,), seed=11, regional=False)]
    alone = [pixels(next(generator.generate(r, CAST)).image) for r in requests]
    together: dict[int, np.ndarray] = {}

    def draw(k: int) -> None:
        together[k] = pixels(next(generator.generate(requests[k], CAST)).image)

    threads = [threading.Thread(target=draw, args=(k,)) for k in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(np.array_equal(together[k], alone[k]) for k in range(len(requests)))
