"""The InsightFace (ArcFace ONNX) path, offline: a tiny exported recogniser, and a clear error when
``buffalo_l`` is neither cached nor downloadable."""

from __future__ import annotations

import time

import numpy as np
import pytest

from configs import FaceConfig
from faces import recognizers
from faces.recognizers import InsightFaceRecognizer, RecognizerUnavailable
from faces.similarity import FaceSimilarity
from tiny_onnx import write_tiny_arcface


@pytest.fixture(scope="module")
def tiny_arcface(tmp_path_factory):
    """A random 1x3x112x112 -> 512 ONNX model; insightface routes it to ArcFaceONNX."""
    return write_tiny_arcface(tmp_path_factory.mktemp("arcface") / "models" / "tinypack" / "tiny_arcface.onnx")


@pytest.fixture(scope="module")
def detector():
    from faces.face_detection import DlibFaceDetector

    return DlibFaceDetector()


def test_tiny_onnx_routes_to_arcface_and_embeds(tiny_arcface, detector, astronaut, grace_hopper):
    recognizer = InsightFaceRecognizer.from_onnx(tiny_arcface)
    assert recognizer.name == "insightface" and recognizer.dim == 512 and recognizer.input_size == 112
    face = detector.detect(astronaut)[0]
    first = recognizer.embed(astronaut, face)
    assert first.shape == (512,) and first.dtype == np.float32
    assert np.linalg.norm(first) == pytest.approx(1.0, abs=1e-5)
    assert float(first @ recognizer.embed(astronaut.copy(), face)) == pytest.approx(1.0, abs=1e-6)
    other = recognizer.embed(grace_hopper, detector.detect(grace_hopper)[0])
    assert float(first @ other) < 0.9999  # a different crop gives a different vector


def test_insightface_end_to_end_through_face_similarity(tiny_arcface, detector, astronaut, group_photo):
    face = FaceConfig(recognizer="insightface", insightface_model=str(tiny_arcface))
    sim = FaceSimilarity.from_config(face, detector=detector)
    assert isinstance(sim.recognizer, InsightFaceRecognizer)
    reference = sim.reference(astronaut, aligned=False)
    result = sim.score_panel(astronaut, {"Eileen Collins": reference})
    assert result.recognizer == "insightface"
    assert result.score_of("Eileen Collins") == pytest.approx(1.0, abs=1e-5)
    faces = detector.detect(group_photo)
    embed = sim.recognizer.embed
    refs = {"A": embed(group_photo, faces[3]), "B": embed(group_photo, faces[1])}
    result = sim.score_panel(group_photo, refs)
    assert [c.box for c in result.characters] == [faces[3].box, faces[1].box]


def test_pack_folder_is_found_under_the_root(tiny_arcface, astronaut, detector):
    root = tiny_arcface.parent.parent.parent
    recognizer = InsightFaceRecognizer.from_name("tinypack", root=root)
    assert recognizer.embed(astronaut, detector.detect(astronaut)[0]).shape == (512,)
    assert InsightFaceRecognizer.from_name(str(tiny_arcface.parent)).dim == 512


def _fails_fast(call, *words: str) -> str:
    start = time.monotonic()
    with pytest.raises(RecognizerUnavailable) as info:
        call()
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message
    return message


def test_missing_buffalo_l_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(recognizers, "host_reachable", lambda *a, **k: False)
    face = FaceConfig(recognizer="insightface", insightface_model="buffalo_l")
    message = _fails_fast(lambda: FaceSimilarity.from_config(face, insightface_home=str(tmp_path)),
                          "buffalo_l", "offline")
    assert "face.recognizer: dlib" in message
    assert not any(tmp_path.rglob("*.zip"))


def test_real_download_attempt_offline_fails_fast(tmp_path, monkeypatch):
    if recognizers.host_reachable(recognizers.INSIGHTFACE_DOWNLOAD_HOST, timeout_s=2):
        pytest.skip("network available: this would download buffalo_l")
    # Without the pre-check, insightface itself tries github and gets a connection error.
    monkeypatch.setattr(recognizers, "host_reachable", lambda *a, **k: True)
    _fails_fast(lambda: InsightFaceRecognizer.from_name("buffalo_l", root=tmp_path),
                "could not download", "buffalo_l")
    monkeypatch.undo()
    # And the real pre-check, with the default root redirected by $INSIGHTFACE_HOME.
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path / "home"))
    _fails_fast(lambda: recognizers.load_recognizer(FaceConfig(recognizer="insightface")), "offline")


def test_bad_model_paths_are_clear_errors(tmp_path):
    _fails_fast(lambda: InsightFaceRecognizer.from_name(str(tmp_path / "nope.onnx")), "does not exist")
    _fails_fast(lambda: InsightFaceRecognizer.from_name(str(tmp_path / "no" / "pack")), "does not exist")
    _fails_fast(lambda: InsightFaceRecognizer.from_name("antelopev2", root=tmp_path, download=False),
                "antelopev2")
