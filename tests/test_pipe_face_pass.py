"""The identity face pass (pipelines/face_pass.py) on the tiny preset: soft mask centred on the
face, thresholds from config, the panel's context in the face prompt, one batched call."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.face_pass import (FACE_PROMPT, FaceJob, IdentityMatcher, crop_box, face_mask, face_prompt,
                                 panel_context, usable_faces)
from pipelines.generation import ComicRequest, PanelGenerator, PanelSpec, panel_generator
from tiny_cast import CAST, with_generation


TWO = PanelSpec("Ada Lovelace and Alan Turing laugh, wearing glasses.", ("Ada Lovelace", "Alan Turing"))


@pytest.fixture(scope="module")
def generator(tiny_components):
    return panel_generator(tiny_components)


@pytest.fixture(scope="module")
def two_people(astronaut, grace_hopper) -> np.ndarray:
    """The astronaut and Grace Hopper side by side, 512 px high (RGB uint8 (512, 948, 3)); dlib
    also reports a weak false face (score ~0.15) on the astronaut's suit."""
    hopper = cv2.resize(grace_hopper, (round(grace_hopper.shape[1] * 512 / grace_hopper.shape[0]), 512),
                        interpolation=cv2.INTER_AREA)
    return np.concatenate([astronaut, hopper], axis=1)


class Recorder:
    """Calls the generator's real batched inpainting and keeps what went in and came out."""

    def __init__(self, generator: PanelGenerator) -> None:
        self.generator, self.calls = generator, []

    def __call__(self, request, panel, crops, masks, jobs, seeds):
        out = PanelGenerator.inpaint_faces(self.generator, request, panel, crops, masks, jobs, seeds)
        self.calls.append((crops, masks, jobs, seeds, out))
        return out


# ----------------------------------------------------------------------------- the mask


def test_mask_is_soft_and_centred_on_a_face_at_the_panel_border():
    box = (50.0, 0.0, 64.0, 14.0)  # a face in the top right corner of a 64 x 64 panel
    x0, y0, x1, y1 = crop_box(box, 0.5, 64, 64)
    assert (x0, y0, x1, y1) == (36, 0, 64, 28)  # the crop is shifted inward ...
    face = (box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0)
    mask = face_mask(x1 - x0, face, (x0 == 0, y0 == 0, x1 == 64, y1 == 64))
    assert mask.shape == (28, 28) and mask.dtype == np.float32
    assert (mask[0:15, 14:28] == 1).all()  # ... the mask follows the face, up to the panel's edges
    assert (mask[:, 0] == 0).all() and (mask[-1, :] == 0).all()  # inner sides: exactly 0
    ramp = mask[5, :14]
    assert ((ramp > 0) & (ramp < 1)).sum() >= 10 and (np.diff(ramp) >= 0).all()  # soft, not 0/1
    centred = face_mask(28, (7.0, 7.0, 21.0, 21.0))
    assert centred[14, 14] == 1 and (centred[[0, -1], :] == 0).all() and (centred[:, [0, -1]] == 0).all()


def test_soft_mask_reaches_the_pipeline_as_its_support_and_blends_here(generator):
    """diffusers binarises ``mask_image``; the pass hands it the soft mask's whole support and
    blends the redrawn crop with the soft mask itself: inside the crop every pixel is
    round(drawn x (1 - a) + redrawn x a)."""
    request = ComicRequest(panels=(TWO,), seed=3)
    resolved, (prepared,) = generator.prepare(request, CAST)
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    box = (48.0, 20.0, 64.0, 36.0)  # at the right border
    recorder = Recorder(generator)
    generator.inpaint_faces = recorder  # the instance attribute shadows the method for this test
    try:
        out, (edit,) = generator.face_pass(resolved, prepared, image, 3, jobs=[FaceJob(0, "Ada Lovelace", box)])
    finally:
        del generator.inpaint_faces
    (_, masks, _, _, redrawn), = recorder.calls
    x0, y0, x1, y1 = edit.crop
    side = x1 - x0
    alpha = face_mask(side, (box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0), (False, False, True, False))
    sent = np.asarray(masks[0])
    assert set(np.unique(sent)) == {0, 255}  # binary already: nothing for diffusers to cut
    support = np.asarray(Image.fromarray(np.where(alpha > 0, 255, 0).astype(np.uint8)).resize(
        sent.shape[::-1], Image.NEAREST))
    assert np.array_equal(sent, support)
    back = np.asarray(redrawn[0].convert("RGB").resize((side, side), Image.LANCZOS), dtype=np.float32)
    drawn = np.asarray(image, dtype=np.float32)[y0:y1, x0:x1]
    want = np.clip((drawn * (1 - alpha[..., None]) + back * alpha[..., None]).round(), 0, 255)
    assert np.array_equal(np.asarray(out)[y0:y1, x0:x1], want.astype(np.uint8))
    soft = (alpha > 0) & (alpha < 0.5)  # the ring the old binarised mask never redrew
    assert soft.sum() > 20 and (np.asarray(out)[y0:y1, x0:x1][soft] != np.asarray(image)[y0:y1, x0:x1][soft]).any()
    outside = np.ones((64, 64), bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(np.asarray(out)[outside], np.asarray(image)[outside])


# ----------------------------------------------------------------------------- thresholds


def test_detection_score_and_size_thresholds_come_from_the_config(two_people, tiny_components, generator):
    faces = tiny_components.face_detector.detect(two_people)
    assert len(faces) == 3 and len(usable_faces(faces, 0.0, 0)) == 3
    kept = usable_faces(faces, 0.3, 24)
    assert len(kept) == 2 and all(faces[i].score > 0.9 for i in kept)  # the weak false face is out
    assert usable_faces(faces, 0.3, 1000) == []
    panel = PanelSpec("Ada Lovelace and Alan Turing pose.", ("Ada Lovelace", "Alan Turing"))
    request = ComicRequest(panels=(panel,), seed=1, width=512, height=256)
    resolved, (prepared,) = generator.prepare(request, CAST)
    photo = Image.fromarray(two_people)
    real = {tuple(faces[i].box) for i in kept}
    assert {job.box for job in generator.find_faces(resolved, prepared, photo)} == real
    strict = PanelGenerator(with_generation(tiny_components, face_pass_min_size=400))
    assert strict.find_faces(resolved, prepared, photo) == []
    picky = PanelGenerator(with_generation(tiny_components, face_pass_min_score=5.0))
    assert picky.find_faces(resolved, prepared, photo) == []


def test_only_faces_above_the_similarity_threshold_get_an_identity(two_people, tiny_components, generator):
    """Ada's reference is the right face; Alan's is nobody in the panel (a random direction):
    Alan's assigned face stays as drawn instead of receiving his identity."""
    from faces.similarity import FaceSimilarity

    similarity = FaceSimilarity.from_config(tiny_components.config.face, detector=tiny_components.face_detector)
    right = two_people[:, 512:]
    stranger = np.random.default_rng(1).standard_normal(similarity.reference(right, aligned=False).shape)
    references = {"Ada Lovelace": similarity.reference(right, aligned=False),
                  "Alan Turing": (stranger / np.linalg.norm(stranger)).astype(np.float32)}
    matcher = IdentityMatcher(similarity, references)
    panel = PanelSpec("Ada Lovelace and Alan Turing pose.", ("Ada Lovelace", "Alan Turing"))
    resolved, (prepared,) = generator.prepare(ComicRequest(panels=(panel,), seed=1, width=512, height=256), CAST)
    photo = Image.fromarray(two_people)
    (job,) = generator.find_faces(resolved, prepared, photo, matcher)
    assert job.name == "Ada Lovelace" and job.box[0] >= 512 and job.similarity > 0.8
    keep_all = PanelGenerator(with_generation(tiny_components, face_pass_min_similarity=-1.0))
    jobs = keep_all.find_faces(resolved, prepared, photo, matcher)
    assert [j.name for j in jobs] == ["Ada Lovelace", "Alan Turing"] and jobs[1].similarity < 0.8


# ----------------------------------------------------------------------------- the face prompt


def test_face_prompt_keeps_the_context_without_the_other_characters():
    assert panel_context("Ada Lovelace and Alan Turing laugh, wearing glasses.", ["Alan Turing"]) == \
        "Ada Lovelace laugh, wearing glasses."
    assert panel_context("Ada Lovelace, Alan Turing and Grace Hopper talk.", ["Ada Lovelace", "Grace Hopper"]) == \
        "Alan Turing talk."
    assert panel_context("Alan Turing's cat sits with ada lovelace.", ["Alan Turing", "Ada Lovelace"]) == \
        "cat sits."
    assert panel_context("Ada Lovelace-Byron smiles.", ["Ada Lovelace"]) == "Ada Lovelace-Byron smiles."
    assert face_prompt("Ada Lovelace") == FACE_PROMPT.format("Ada Lovelace")
    assert face_prompt("Ada Lovelace", TWO.text, ["Alan Turing"]) == \
        f"{FACE_PROMPT.format('Ada Lovelace')}, Ada Lovelace laugh, wearing glasses."


def test_face_conditioning_has_the_context_and_nothing_of_the_other_character(tiny_components, generator):
    def embeds(gen, text, characters=("Ada Lovelace", "Alan Turing")):
        request = ComicRequest(panels=(PanelSpec(text, characters),), seed=1)
        resolved, (prepared,) = gen.prepare(request, CAST)
        return gen.face_prompt_embeddings(resolved, prepared, FaceJob(0, "Ada Lovelace", (0, 0, 9, 9)), False)

    base = embeds(generator, TWO.text)
    other = embeds(generator, "Ada Lovelace and Grace Hopper laugh, wearing glasses.", ("Ada Lovelace", "Grace Hopper"))
    assert torch.equal(base.prompt_embeds, other.prompt_embeds)  # the other person is not in it
    assert torch.equal(base.pooled_prompt_embeds, other.pooled_prompt_embeds)
    plain = embeds(generator, "Ada Lovelace and Alan Turing laugh.")
    assert not torch.equal(base.prompt_embeds, plain.prompt_embeds)  # "wearing glasses" is
    off = PanelGenerator(with_generation(tiny_components, face_pass_context=False))
    assert torch.equal(embeds(off, TWO.text).prompt_embeds, embeds(off, "Ada Lovelace and Alan Turing laugh.").prompt_embeds)


# ----------------------------------------------------------------------------- batching


def test_all_faces_go_in_one_batched_call_that_equals_each_face_alone(tiny_components, generator):
    request = ComicRequest(panels=(TWO,), seed=3)
    resolved, (prepared,) = generator.prepare(request, CAST)
    image = next(generator.generate(replace(request, face_pass=False), CAST)).image
    jobs = [FaceJob(0, "Ada Lovelace", (40.0, 10.0, 56.0, 26.0)), FaceJob(1, "Alan Turing", (4.0, 20.0, 20.0, 36.0))]
    recorder = Recorder(generator)
    generator.inpaint_faces = recorder
    try:
        _, edits = generator.face_pass(resolved, prepared, image, 3, jobs=jobs)
    finally:
        del generator.inpaint_faces
    assert len(recorder.calls) == 1  # one pipeline call for the whole panel
    crops, masks, batch, seeds, together = recorder.calls[0]
    size = tiny_components.config.generation.face_pass_size
    assert [c.size for c in crops] == [(size, size)] * 2 and [e.seed for e in edits] == seeds
    for k in range(2):
        (alone,) = generator.inpaint_faces(resolved, prepared, [crops[k]], [masks[k]], [batch[k]], [seeds[k]])
        difference = np.abs(np.asarray(alone, np.int16) - np.asarray(together[k], np.int16))
        assert difference.max() <= 2, difference.max()  # batched kernels round differently at most
    assert not np.array_equal(np.asarray(together[0]), np.asarray(together[1]))
    smaller = PanelGenerator(with_generation(tiny_components, face_pass_size=32))
    recorder = Recorder(smaller)
    smaller.inpaint_faces = recorder
    smaller.face_pass(resolved, prepared, image, 3, jobs=jobs)
    assert [c.size for c in recorder.calls[0][0]] == [(32, 32)] * 2
