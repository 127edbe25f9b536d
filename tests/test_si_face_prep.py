"""Face preparation on real photos: detection, largest-face choice, FFHQ alignment, clear errors."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from faces.face_detection import DlibFaceDetector
from faces.face_prep import (FFHQ_TEMPLATE_512, AlignedFace, FacePrepError, face_size, load_photo,
                                      prepare_face)

# LMEDS fits a similarity to all five points, so the eyes land within a few pixels of the template,
# not exactly on it (a smile moves the mouth corners): 2% of the crop width.
EYE_TOLERANCE_PX = 10.0


@pytest.fixture(scope="module")
def detector() -> DlibFaceDetector:
    return DlibFaceDetector()


@pytest.fixture(scope="module")
def astronaut_aligned(astronaut, detector) -> AlignedFace:
    return prepare_face(astronaut, detector)


def _redetected_eyes(aligned: AlignedFace, detector) -> np.ndarray:
    """Eyes found by running the detector again on the aligned crop (independent of the fit)."""
    faces = detector.detect(aligned.image)
    assert faces, "no face found in the aligned crop"
    return faces[0].landmarks[:2]


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_alignment_puts_eyes_on_template(photo, request, detector):
    aligned = prepare_face(request.getfixturevalue(photo), detector)
    assert aligned.image.shape == (512, 512, 3) and aligned.image.dtype == np.uint8
    eyes = _redetected_eyes(aligned, detector)
    assert np.abs(eyes - FFHQ_TEMPLATE_512[:2]).max() < EYE_TOLERANCE_PX
    # the reported landmarks are where the face really is in the crop
    assert np.abs(aligned.landmarks[:2] - eyes).max() < 4.0
    assert aligned.warnings == []


def test_rotated_scaled_copy_aligns_like_the_original(astronaut, astronaut_aligned, detector):
    matrix = cv2.getRotationMatrix2D((256, 256), 25, 1.6)
    matrix[:, 2] += (300, 300)
    rotated = cv2.warpAffine(astronaut, matrix, (1100, 1100), borderMode=cv2.BORDER_REFLECT)
    aligned = prepare_face(rotated, detector)
    eyes = _redetected_eyes(aligned, detector)
    assert np.abs(eyes - FFHQ_TEMPLATE_512[:2]).max() < EYE_TOLERANCE_PX
    assert np.abs(aligned.landmarks - astronaut_aligned.landmarks).max() < 4.0
    inner = (slice(64, 448), slice(64, 448))
    diff = np.abs(aligned.image[inner].astype(int) - astronaut_aligned.image[inner].astype(int)).mean()
    assert diff < 10.0  # same crop up to resampling (grey levels 0..255)


def test_huge_photo_is_shrunk_for_detection_without_losing_accuracy(grace_hopper, detector):
    reference = prepare_face(grace_hopper, detector)
    huge = cv2.resize(grace_hopper, (2048, 2400), interpolation=cv2.INTER_CUBIC)
    aligned = prepare_face(huge, detector)
    assert np.abs(aligned.landmarks - reference.landmarks).max() < 4.0
    x0, y0, x1, y1 = aligned.source_box
    assert x1 - x0 > 500  # the box is reported in the huge photo's pixels


def test_small_photo_is_upsampled_and_warned_about(astronaut, astronaut_aligned, detector):
    small = cv2.resize(astronaut, (100, 100), interpolation=cv2.INTER_AREA)
    aligned = prepare_face(small, detector)
    assert np.abs(aligned.landmarks - astronaut_aligned.landmarks).max() < 4.0
    assert any("face is small" in w for w in aligned.warnings)


def test_group_photo_uses_the_largest_face_and_warns(group_photo, detector):
    aligned = prepare_face(group_photo, detector)
    assert "6 faces found; using the largest" in aligned.warnings
    faces = detector.detect(group_photo)
    assert len(faces) == 6
    chosen = min(faces, key=lambda f: np.abs(np.subtract(f.box, aligned.source_box)).max())
    assert face_size(chosen) == max(face_size(f) for f in faces)
    # the fourth person from the left has the biggest face in insightface's t1 photo
    cx = (aligned.source_box[0] + aligned.source_box[2]) / 2
    assert 450 < cx < 560
    eyes = _redetected_eyes(aligned, detector)
    assert np.abs(eyes - FFHQ_TEMPLATE_512[:2]).max() < EYE_TOLERANCE_PX


def test_weak_false_detection_is_not_chosen(astronaut, detector):
    faces = detector.detect(astronaut)
    assert len(faces) == 2  # the real face and a weak false one on the suit, of the same size
    aligned = prepare_face(astronaut, detector)
    assert aligned.source_box[1] < 200  # the head, not the suit (y ~ 335)
    assert not any("faces found" in w for w in aligned.warnings)


def test_exif_orientation_is_applied(astronaut, astronaut_aligned, detector):
    stored = Image.fromarray(astronaut).rotate(90, expand=True)  # sideways on disk
    exif = stored.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", exif=exif, quality=95)
    aligned = prepare_face(buffer.getvalue(), detector)
    assert np.abs(aligned.landmarks - astronaut_aligned.landmarks).max() < 4.0


def test_path_bytes_pil_and_array_inputs_agree(tmp_path, grace_hopper, detector):
    path = tmp_path / "grace.png"
    Image.fromarray(grace_hopper).save(path)
    results = [prepare_face(x, detector) for x in
               (path, str(path), path.read_bytes(), Image.open(path), grace_hopper)]
    for result in results[1:]:
        np.testing.assert_array_equal(result.image, results[0].image)
    assert load_photo(path).raw_bytes == path.read_bytes()
    assert load_photo(grace_hopper).raw_bytes is None


@pytest.mark.parametrize("photo, message", [
    (b"this is not an image", "not a readable image"),
    (b"", "empty"),
    (np.zeros((32, 48, 3), np.uint8), "too small (48x32 pixels)"),
    (np.full((256, 256, 3), 128, np.uint8), "no face found"),
    (np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8), "no face found"),
    ("/nonexistent/photo.jpg", "not found"),
    (np.zeros((64, 64, 7), np.uint8), "expected an RGB image array"),
])
def test_bad_inputs_raise_clear_one_line_errors(photo, message, detector):
    with pytest.raises(FacePrepError) as info:
        prepare_face(photo, detector, min_image_size=64)
    text = str(info.value)
    assert message in text
    assert "\n" not in text and len(text) < 120
    assert isinstance(info.value, ValueError)


def test_truncated_jpeg_is_a_clear_error(astronaut, detector):
    buffer = io.BytesIO()
    Image.fromarray(astronaut).save(buffer, "JPEG")
    with pytest.raises(FacePrepError, match="not a readable image"):
        prepare_face(buffer.getvalue()[:200], detector)
