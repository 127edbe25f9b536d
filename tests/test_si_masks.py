"""Face/hair masks: class mapping, parser input, plausibility check and landmark fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faces.face_detection import DlibFaceDetector
from faces.face_prep import prepare_face
from stableidentity.masks import (FACE_CLASSES, face_masks, landmark_masks, masks_from_parsing, parse_face,
                                  parse_plausibility)


@pytest.fixture(scope="module")
def aligned_faces(astronaut, grace_hopper):
    detector = DlibFaceDetector()
    return {"astronaut": prepare_face(astronaut, detector),
            "grace_hopper": prepare_face(grace_hopper, detector)}


class FixedParser(torch.nn.Module):
    """Stands in for BiSeNet: returns one-hot logits of a fixed label map and records its input."""

    def __init__(self, labels: np.ndarray) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.labels = torch.from_numpy(labels)
        self.seen: torch.Tensor | None = None

    def forward(self, x: torch.Tensor):
        self.seen = x
        logits = torch.nn.functional.one_hot(self.labels, 19).permute(2, 0, 1)[None].float()
        return logits, logits, logits


def test_class_mapping_on_a_synthetic_parsing_map():
    parsing = np.repeat(np.arange(19)[None, :], 4, axis=0)  # one column per class 0..18
    face, hair = masks_from_parsing(parsing)
    assert face[0].tolist() == [c in (1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13) for c in range(19)]
    assert hair[0].tolist() == [c == 17 for c in range(19)]
    assert 9 not in FACE_CLASSES and 14 not in FACE_CLASSES  # ear rings and neck are not face


def test_parser_gets_facexlib_normalisation_and_argmax_is_used(aligned_faces):
    image = aligned_faces["astronaut"].image
    labels = np.zeros((512, 512), dtype=np.int64)
    labels[100:200, 50:60] = 17
    parser = FixedParser(labels)
    parsed = parse_face(parser, image)
    np.testing.assert_array_equal(parsed, labels)
    expected = (image[0, 0] / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(parser.seen[0, :, 0, 0].numpy(), expected, atol=1e-5)


def test_plausible_parse_is_used(aligned_faces):
    aligned = aligned_faces["grace_hopper"]
    face, hair = landmark_masks(aligned.landmarks, (512, 512))
    labels = np.zeros((512, 512), dtype=np.int64)
    labels[face] = 1
    labels[hair] = 17
    labels[235:245, 185:200] = 4  # an eye: still face
    masks = face_masks(FixedParser(labels), aligned.image, aligned.landmarks)
    assert masks.source == "parser" and masks.reason == ""
    np.testing.assert_array_equal(masks.face, face)
    np.testing.assert_array_equal(masks.hair, hair)


@pytest.mark.parametrize("fill, reason", [(0, "empty"), (1, "everything")])
def test_implausible_parse_falls_back_to_landmarks(aligned_faces, fill, reason):
    aligned = aligned_faces["astronaut"]
    parser = FixedParser(np.full((512, 512), fill, dtype=np.int64))
    masks = face_masks(parser, aligned.image, aligned.landmarks)
    assert masks.source == "landmarks" and reason in masks.reason


def test_parse_far_from_the_landmarks_is_rejected(aligned_faces):
    aligned = aligned_faces["astronaut"]
    face = np.zeros((512, 512), dtype=bool)
    face[200:420, 150:360] = True   # covers the inner face...
    face[0:60, :] = True            # ...but also a big band of background at the top
    face[470:, :] = True
    assert "far from the landmarks" in parse_plausibility(face, aligned.landmarks)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_masks_on_real_faces_are_plausible(aligned_faces, tiny_components, name):
    aligned = aligned_faces[name]
    masks = face_masks(tiny_components.face_parser, aligned.image, aligned.landmarks)
    # the tiny preset's BiSeNet has random weights: its parse must be caught and replaced
    assert masks.source == "landmarks" and masks.reason
    face, hair = masks.face, masks.hair
    assert 0.1 < face.mean() < 0.45 and 0.02 < hair.mean() < 0.3
    for x, y in aligned.landmarks:  # eyes, nose, mouth corners
        assert face[int(round(y)), int(round(x))]
    assert not (face & hair).any()
    face_y = np.nonzero(face)[0]
    hair_y = np.nonzero(hair)[0]
    assert hair_y.mean() < face_y.mean() and hair_y.min() < face_y.min()
    assert hair_y.max() < aligned.landmarks[3:, 1].min()  # no hair below the mouth
    tensor = masks.to_tensor()
    assert tensor.shape == (2, 512, 512) and tensor.dtype == torch.float32


def test_landmark_masks_follow_a_tilted_face():
    template = np.array([[192.98, 239.95], [318.90, 240.19], [256.63, 314.02], [201.26, 371.41],
                         [313.09, 371.15]])
    angle = np.deg2rad(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array([256.0, 256.0])
    tilted = (template - centre) @ rotation.T + centre
    face, hair = landmark_masks(tilted, (512, 512))
    for x, y in tilted:
        assert face[int(round(y)), int(round(x))]
    # hair sits on the "up" side of the tilted face: opposite to the mouth from the eyes
    eyes, mouth = tilted[:2].mean(axis=0), tilted[3:].mean(axis=0)
    up = (eyes - mouth) / np.linalg.norm(eyes - mouth)
    ys, xs = np.nonzero(hair)
    assert np.mean((np.stack([xs, ys], 1) - eyes) @ up) > 50
