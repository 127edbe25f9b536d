"""Face detectors that return boxes, confidences and five alignment landmarks.

Two back-ends behind one interface:

* :class:`DlibFaceDetector` — dlib's HOG detector with the 68-point shape predictor from the
  ``face_recognition_models`` package (permissive licence, ships in a wheel, works offline).
* :class:`RetinaFaceDetector` — facexlib's RetinaFace (weights downloaded on first use).

Landmarks are always five (x, y) points in image pixels, in the order of the FFHQ template:
left eye centre, right eye centre, nose tip, left mouth corner, right mouth corner, where
"left" means the smaller x in the image.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class DetectedFace:
    """One face found in an RGB image.

    Attributes:
        box: (x0, y0, x1, y1) in pixels.
        score: detector confidence (higher is surer; scale depends on the back-end).
        landmarks: float32 array (5, 2) of (x, y) pixels, FFHQ-template order.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


class FaceDetector(Protocol):
    """Anything that finds faces in an RGB uint8 image (H, W, 3).

    ``detect`` must be safe to call from several threads at once (the app shares one detector
    between every request and the training worker); the back-ends here lock themselves.
    """

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """All faces, most confident first."""
        ...


def face_recognition_models_dir() -> Path:
    """The folder of dlib model files shipped by the ``face_recognition_models`` wheel.

    Located with importlib, without importing the package (its ``__init__`` needs
    ``pkg_resources``, which new setuptools no longer ships).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("face_recognition_models is not installed (see requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class DlibFaceDetector:
    """dlib HOG detector + 68-point landmarks reduced to the five alignment points.

    Faces are ranked by detector confidence, then size (upsampling can add weak false faces).
    One call at a time per detector (its own lock): two threads inside dlib's ``run`` corrupt
    the heap and abort the process.
    """

    def __init__(self, upsample: int = 1, threshold: float = 0.0) -> None:
        import dlib

        models = face_recognition_models_dir()
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat"))
        self._dlib = dlib
        self.upsample = upsample
        self.threshold = threshold
        self._lock = threading.Lock()  # detector + predictor: one call at a time

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        image = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
        with self._lock:
            rects, scores, _ = self._detector.run(image, self.upsample, self.threshold)
            shapes = [self._predictor(image, rect) for rect in rects]
        faces = []
        for rect, score, shape in zip(rects, scores, shapes):
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
            faces.append(DetectedFace(
                box=(float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom())),
                score=float(score), landmarks=five_points_from_68(points)))
        faces.sort(key=lambda f: (f.score, f.area), reverse=True)
        return faces


def five_points_from_68(points: np.ndarray) -> np.ndarray:
    """(68, 2) iBUG landmarks -> (5, 2): eye centres, nose tip, mouth corners (image-left first)."""
    eye_a, eye_b = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    mouth_a, mouth_b = points[48], points[54]
    left_eye, right_eye = sorted((eye_a, eye_b), key=lambda p: p[0])
    left_mouth, right_mouth = sorted((mouth_a, mouth_b), key=lambda p: p[0])
    return np.stack([left_eye, right_eye, points[30], left_mouth, right_mouth]).astype(np.float32)


class RetinaFaceDetector:
    """facexlib RetinaFace (ResNet-50); expects a loaded ``facexlib`` RetinaFace model.

    One call at a time (its own lock): ``detect_faces`` stores per-image state (scales, priors)
    on the shared module.
    """

    def __init__(self, model: object, threshold: float = 0.8) -> None:
        self._model = model
        self.threshold = threshold
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        import torch

        bgr = np.ascontiguousarray(image[..., :3][..., ::-1])
        with self._lock, torch.no_grad():
            rows = self._model.detect_faces(bgr, self.threshold)
        faces = [DetectedFace(box=tuple(float(v) for v in row[:4]), score=float(row[4]),
                              landmarks=np.asarray(row[5:15], dtype=np.float32).reshape(5, 2))
                 for row in rows]
        faces.sort(key=lambda f: (f.score, f.area), reverse=True)
        return faces
