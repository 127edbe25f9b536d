"""Face similarity with dlib on real photos that ship in packages, Hungarian matching, best of N."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from faces.similarity import (FFHQ_TEMPLATE_512, CharacterScore, FaceSimilarity, NoFaceFound,
                                       PanelScore, assign_faces, cosine_matrix, pick_best)

# Measured on these photos (see docs/FIDELITY.md): same person 0.98-1.00, different people 0.81-0.91.
SAME_MIN = 0.95
DIFFERENT_MAX = 0.93


@pytest.fixture(scope="module")
def sim():
    from configs import load_config

    return FaceSimilarity.from_config(load_config("tiny").face)


def flip(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[:, ::-1])


def resize(image: np.ndarray, scale: float) -> np.ndarray:
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((round(w * scale), round(h * scale)), Image.BICUBIC))


def jpeg(image: np.ndarray, quality: int = 60) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def align_ffhq(image: np.ndarray, landmarks: np.ndarray, size: int = 512) -> np.ndarray:
    """Warp a photo so its five landmarks land on the FFHQ template (like the library's face.png)."""
    import cv2

    matrix, _ = cv2.estimateAffinePartial2D(landmarks, FFHQ_TEMPLATE_512 * (size / 512), method=cv2.LMEDS)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def crop(image: np.ndarray, box, margin: float = 0.6) -> np.ndarray:
    x0, y0, x1, y1 = box
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    h, w = image.shape[:2]
    return np.ascontiguousarray(image[max(0, int(y0 - my)):min(h, int(y1 + my)),
                                      max(0, int(x0 - mx)):min(w, int(x1 + mx))])


# ----------------------------------------------------------------------------- same vs different

def test_same_person_under_flip_resize_jpeg_beats_different_people(sim, astronaut, grace_hopper):
    variants = {"flip": flip, "resize": lambda x: resize(x, 0.5), "jpeg": jpeg,
                "all": lambda x: jpeg(resize(flip(x), 0.6))}
    refs = {"Eileen Collins": sim.reference(astronaut, aligned=False),
            "Grace Hopper": sim.reference(grace_hopper, aligned=False)}
    assert refs["Eileen Collins"].shape == (128,)
    assert np.linalg.norm(refs["Eileen Collins"]) == pytest.approx(1.0, abs=1e-5)
    same, different = [], []
    for name, photo, other in [("Eileen Collins", astronaut, "Grace Hopper"),
                               ("Grace Hopper", grace_hopper, "Eileen Collins")]:
        for make in variants.values():
            panel = make(photo)
            same.append(sim.score_panel(panel, {name: refs[name]}).score_of(name))
            different.append(sim.score_panel(panel, {other: refs[other]}).score_of(other))
    assert min(same) > SAME_MIN, same
    assert max(different) < DIFFERENT_MAX, different
    assert min(same) - max(different) > 0.05


def test_aligned_reference_crop_matches_the_photo(sim, astronaut, grace_hopper):
    face = sim.detector.detect(astronaut)[0]
    aligned = align_ffhq(astronaut, face.landmarks)
    reference = sim.reference(aligned)
    assert sim.score_panel(astronaut, {"A": reference}).score_of("A") > SAME_MIN
    assert sim.score_panel(grace_hopper, {"A": reference}).score_of("A") < DIFFERENT_MAX


def test_aligned_reference_falls_back_to_template_landmarks(sim, astronaut):
    class Blind:
        def detect(self, image):
            return []

    aligned = align_ffhq(astronaut, sim.detector.detect(astronaut)[0].landmarks)
    detected = sim.reference(aligned)
    blind = FaceSimilarity(detector=Blind(), recognizer=sim.recognizer)
    assert float(blind.reference(aligned) @ detected) > 0.97
    with pytest.raises(NoFaceFound):
        blind.reference(astronaut[:, :400], aligned=False)
    with pytest.raises(NoFaceFound):
        sim.reference(np.full((300, 200, 3), 128, np.uint8))


# ----------------------------------------------------------------------------- Hungarian matching

@pytest.fixture(scope="module")
def group(sim, group_photo):
    faces = sim.detector.detect(group_photo)
    refs = [sim.reference(crop(group_photo, faces[i].box), aligned=False) for i in (0, 2, 4)]
    return faces, refs


def test_group_photo_each_reference_finds_its_own_face(sim, group_photo, group):
    faces, (ref_a, ref_b, ref_c) = group
    assert len(faces) == 6
    result = sim.score_panel(group_photo, {"Ada Lovelace": ref_a, "Alan Turing": ref_b})
    assert result.faces_found == 6
    assert result.face_boxes == tuple(f.box for f in faces)  # every face, matched or not
    assert [c.name for c in result.characters] == ["Ada Lovelace", "Alan Turing"]
    assert result.characters[0].box == faces[0].box
    assert result.characters[1].box == faces[2].box
    assert result.worst > SAME_MIN

    swapped = sim.score_panel(group_photo, {"Ada Lovelace": ref_b, "Alan Turing": ref_a})
    assert swapped.characters[0].box == faces[2].box
    assert swapped.characters[1].box == faces[0].box

    three = sim.score_panel(group_photo, {"C": ref_c, "A": ref_a, "B": ref_b})
    assert [c.box for c in three.characters] == [faces[4].box, faces[0].box, faces[2].box]


def test_more_characters_than_faces_reports_no_face(sim, grace_hopper, astronaut):
    refs = {"Eileen Collins": sim.reference(astronaut, aligned=False),
            "Grace Hopper": sim.reference(grace_hopper, aligned=False)}
    result = sim.score_panel(grace_hopper, refs)
    assert result.faces_found == 1
    assert result.score_of("Eileen Collins") is None
    assert result.score_of("Grace Hopper") > SAME_MIN
    assert result.worst is None
    assert re.fullmatch(r"Eileen Collins no face found · Grace Hopper (0\.9\d|1\.00)", result.badge())


@pytest.mark.parametrize("panel", [np.full((256, 256, 3), 200, np.uint8),
                                   np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8),
                                   Image.new("RGB", (128, 96))],
                         ids=["blank", "noise64", "pil-black"])
def test_panel_without_face_reports_it(sim, astronaut, panel):
    result = sim.score_panel(panel, {"Eileen Collins": sim.reference(astronaut, aligned=False)})
    assert result.faces_found == 0
    assert result.characters == (CharacterScore("Eileen Collins", None, None),)
    assert result.worst is None
    assert result.badge() == "Eileen Collins no face found"


def test_score_candidates_and_pick_best_on_real_images(sim, astronaut, grace_hopper):
    refs = {"Grace Hopper": sim.reference(grace_hopper, aligned=False)}
    candidates = [np.zeros((128, 128, 3), np.uint8), astronaut, jpeg(flip(grace_hopper))]
    scores = sim.score_candidates(candidates, refs)
    assert [s.faces_found > 0 for s in scores] == [False, True, True]
    assert pick_best(scores) == 2


def test_panel_with_no_characters(sim, astronaut):
    result = sim.score_panel(astronaut, {})
    assert result.characters == () and result.faces_found >= 1
    assert result.badge().startswith("no characters · ")


# ----------------------------------------------------------------------------- pure logic

def panel(*scores: float | None) -> PanelScore:
    return PanelScore([CharacterScore(f"P{i}", s, None) for i, s in enumerate(scores)], faces_found=2)


def test_pick_best_takes_highest_worst_character():
    assert pick_best([panel(0.9, 0.5), panel(0.7, 0.7), panel(0.95, 0.6)]) == 1


def test_pick_best_missing_face_ranks_lowest_and_ties_go_to_lower_index():
    assert pick_best([panel(0.99, None), panel(-0.5, -0.2)]) == 1
    assert pick_best([panel(None), panel(None, None)]) == 0
    assert pick_best([panel(0.6, 0.8), panel(0.8, 0.6), panel(0.6)]) == 0
    assert pick_best([panel(0.1)]) == 0
    with pytest.raises(ValueError):
        pick_best([])


def test_panel_score_worst_badge_and_json():
    score = PanelScore([CharacterScore("Ada Lovelace", 0.7234, (1.0, 2.0, 3.0, 4.0)),
                        CharacterScore("Alan Turing", None, None)], faces_found=1, recognizer="dlib")
    assert isinstance(score.characters, tuple)
    assert score.worst is None and score.rank_value == float("-inf")
    assert score.badge() == "Ada Lovelace 0.72 · Alan Turing no face found"
    assert panel(0.4, 0.3).worst == 0.3
    data = json.loads(json.dumps(score.to_dict()))
    assert data["characters"][0] == {"name": "Ada Lovelace", "score": 0.7234, "box": [1.0, 2.0, 3.0, 4.0]}
    assert data["worst"] is None and data["recognizer"] == "dlib"
    with pytest.raises(KeyError):
        score.score_of("Nobody")


def test_assign_faces_maximises_total_similarity():
    # Greedy would give character 0 face 0 (0.9) and leave character 1 with 0.1; Hungarian: 0.8 + 0.85.
    sim = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert assign_faces(sim) == [1, 0]
    assert assign_faces(np.array([[0.2, 0.9, 0.1]])) == [1]
    assert assign_faces(np.array([[0.3], [0.7], [0.5]])) == [None, 0, None]
    assert assign_faces(np.zeros((2, 0))) == [None, None]


def test_cosine_matrix():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[3.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(cosine_matrix(a, b), [[1.0, 2 ** -0.5], [0.0, 2 ** -0.5]], atol=1e-6)
    assert cosine_matrix(a, np.zeros((0, 2))).shape == (2, 0)
