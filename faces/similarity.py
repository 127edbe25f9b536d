"""Per-panel face similarity: which face is which character, and how much it looks like them.

A panel names its characters; each has a reference embedding (from the identity library's aligned
``face.png``). :meth:`FaceSimilarity.score_panel` detects every face in the panel, embeds them,
builds the (characters x faces) cosine-similarity matrix and assigns faces to characters with the
Hungarian algorithm (maximum total similarity, each face used once). A character left without a
face scores ``None`` ("no face found").

Best of N: :func:`pick_best` keeps the candidate whose *worst* character scores highest, so a
panel where one of two people lost their identity never wins over one where both kept it.

Scores are cosine similarities of L2-normalised embeddings; their scale depends on the recogniser
(see ``docs/FIDELITY.md``): dlib ~0.98 same person vs ~0.88 different people; ArcFace ~0.5+ vs ~0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from faces.face_detection import DetectedFace, FaceDetector
from faces.recognizers import (DlibRecognizer, InsightFaceRecognizer, Recognizer,
                                        RecognizerUnavailable, l2_normalise, load_recognizer)

if TYPE_CHECKING:  # pragma: no cover
    from configs import FaceConfig

Box = tuple[float, float, float, float]

#: Five landmarks (x, y) of the FFHQ 512x512 alignment template (left eye, right eye, nose,
#: left mouth corner, right mouth corner) — where the identity library's ``face.png`` puts them.
FFHQ_TEMPLATE_512 = np.array([[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
                              [201.26117, 371.41043], [313.08905, 371.15118]], dtype=np.float32)

NO_FACE_TEXT = "no face found"


class NoFaceFound(ValueError):
    """A reference image holds no detectable face."""


@dataclass(frozen=True)
class CharacterScore:
    """One character of a panel.

    Attributes:
        name: the character's full name.
        score: cosine similarity in [-1, 1] between the matched face and the reference;
            None when no face was left for this character.
        box: (x0, y0, x1, y1) of the matched face in panel pixels, or None.
    """

    name: str
    score: float | None
    box: Box | None = None

    @property
    def found(self) -> bool:
        return self.score is not None

    def label(self) -> str:
        """``"Ada Lovelace 0.72"`` or ``"Ada Lovelace no face found"``."""
        return f"{self.name} {self.score:.2f}" if self.score is not None else f"{self.name} {NO_FACE_TEXT}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "score": self.score,
                "box": list(self.box) if self.box is not None else None}


@dataclass(frozen=True)
class PanelScore:
    """Face similarity of one panel image, one entry per character (in the order asked).

    Attributes:
        characters: per-character scores (stored as a tuple; a list is accepted).
        faces_found: faces the detector found in the panel (matched or not).
        recognizer: back-end that produced the scores ("dlib", "insightface"); scales differ.
        face_boxes: every face the detector found, (x0, y0, x1, y1) pixels in detector order,
            so callers (speech-bubble placement) need not detect the same panel again.
    """

    characters: tuple[CharacterScore, ...]
    faces_found: int
    recognizer: str = ""
    face_boxes: tuple[tuple[float, float, float, float], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "characters", tuple(self.characters))
        object.__setattr__(self, "face_boxes", tuple(tuple(b) for b in self.face_boxes))

    @property
    def worst(self) -> float | None:
        """Lowest character score; None if any character has no face (or there are none)."""
        scores = [c.score for c in self.characters]
        if not scores or any(s is None for s in scores):
            return None
        return min(scores)  # type: ignore[type-var]

    @property
    def rank_value(self) -> float:
        """:attr:`worst`, with a missing face (or no character) ranked below every score."""
        worst = self.worst
        return -math.inf if worst is None else worst

    def score_of(self, name: str) -> float | None:
        """The score of character ``name`` (KeyError if it is not in the panel)."""
        for character in self.characters:
            if character.name == name:
                return character.score
        raise KeyError(name)

    def badge(self) -> str:
        """One line for the UI: ``"Ada Lovelace 0.72 · Alan Turing no face found"``."""
        if not self.characters:
            return f"no characters · {self.faces_found} face{'s' if self.faces_found != 1 else ''} found"
        return " · ".join(c.label() for c in self.characters)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"characters": [c.to_dict() for c in self.characters], "faces_found": self.faces_found,
                "worst": self.worst, "recognizer": self.recognizer, "badge": self.badge()}


def pick_best(scores: Sequence[PanelScore]) -> int:
    """Index of the best candidate: highest lowest-per-character score.

    A candidate missing any character's face ranks below every candidate that has them all;
    ties go to the lower index. Raises ValueError on an empty sequence.
    """
    if not scores:
        raise ValueError("pick_best needs at least one candidate")
    best = 0
    for index, score in enumerate(scores):
        if score.rank_value > scores[best].rank_value:
            best = index
    return best


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarities of rows: a (M, D), b (N, D) -> (M, N) float32."""
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    if a.size == 0 or b.size == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def assign_faces(similarity: np.ndarray) -> list[int | None]:
    """Hungarian assignment maximising total similarity.

    Args:
        similarity: (C, F) characters x faces.
    Returns:
        for each character, the index of its face, or None when faces ran out (C > F).
    """
    from scipy.optimize import linear_sum_assignment

    similarity = np.asarray(similarity, dtype=np.float64)
    matched: list[int | None] = [None] * similarity.shape[0]
    if similarity.size == 0:
        return matched
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    for row, col in zip(rows, cols):
        matched[int(row)] = int(col)
    return matched


def as_rgb(image: Any) -> np.ndarray:
    """PIL image or array (H, W), (H, W, 3|4) -> RGB uint8 (H, W, 3)."""
    if hasattr(image, "convert") and not isinstance(image, np.ndarray):
        image = image.convert("RGB")
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected an RGB image, got shape {array.shape}")
    if array.dtype != np.uint8:
        scale = 255.0 if array.dtype.kind == "f" and float(array.max(initial=0)) <= 1.0 else 1.0
        array = np.clip(array.astype(np.float32) * scale, 0, 255).round().astype(np.uint8)
    return np.ascontiguousarray(array[..., :3])


def face_from_landmarks(landmarks: np.ndarray) -> DetectedFace:
    """A DetectedFace around five known landmarks (box ~ a HOG detector's: 2.3 eye distances)."""
    landmarks = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    eye_distance = float(np.linalg.norm(landmarks[1] - landmarks[0]))
    cx, cy = landmarks.mean(axis=0)
    cy -= 0.05 * eye_distance
    half = 1.15 * eye_distance
    return DetectedFace(box=(float(cx - half), float(cy - half), float(cx + half), float(cy + half)),
                        score=0.0, landmarks=landmarks)


@dataclass(frozen=True)
class FaceSimilarity:
    """Detector + recogniser: reference embeddings and per-panel character scores.

    Attributes:
        detector: finds faces (with five landmarks) in RGB uint8 images.
        recognizer: embeds one face (see :mod:`faces.recognizers`).
    """

    detector: FaceDetector
    recognizer: Recognizer

    @classmethod
    def from_config(cls, face: "FaceConfig", detector: FaceDetector | None = None,
                    insightface_home: str | None = None) -> "FaceSimilarity":
        """Build from ``config.face``; reuse ``detector`` (e.g. ``components.face_detector``).

        Raises:
            RecognizerUnavailable: the configured recogniser's weights cannot be had.
        """
        recognizer = load_recognizer(face, insightface_home=insightface_home)
        if detector is None:
            detector = _default_detector(face)
        return cls(detector=detector, recognizer=recognizer)

    # ------------------------------------------------------------------ embeddings

    def embed_faces(self, image: Any) -> tuple[list[DetectedFace], np.ndarray]:
        """All faces of an image and their embeddings: (faces, float32 (F, D)), detector order."""
        rgb = as_rgb(image)
        faces = self.detector.detect(rgb)
        if not faces:
            return [], np.zeros((0, self.recognizer.dim), dtype=np.float32)
        return faces, np.stack([self.recognizer.embed(rgb, face) for face in faces])

    def reference(self, image: Any, aligned: bool = True) -> np.ndarray:
        """Embedding (D,), unit norm, of the main face of a reference image.

        The most confident detected face is used. When none is detected and ``aligned`` is true
        (the identity library's square FFHQ-aligned ``face.png``), the FFHQ template landmarks,
        scaled to the image size, stand in for the detector.

        Raises:
            NoFaceFound: no face detected and the image is not an aligned square crop.
        """
        rgb = as_rgb(image)
        faces = self.detector.detect(rgb)
        if faces:
            face = faces[0]
        elif aligned and rgb.shape[0] == rgb.shape[1]:
            face = face_from_landmarks(FFHQ_TEMPLATE_512 * (rgb.shape[0] / 512.0))
        else:
            raise NoFaceFound(f"no face found in the reference image ({rgb.shape[1]}x{rgb.shape[0]})")
        return l2_normalise(self.recognizer.embed(rgb, face))

    # ------------------------------------------------------------------ scoring

    def score_panel(self, panel_image: Any, references: Mapping[str, np.ndarray]) -> PanelScore:
        """Score each character of a panel against its reference.

        Args:
            panel_image: RGB panel (PIL or uint8 array (H, W, 3)).
            references: character full name -> reference embedding (D,), in panel order.
        Returns:
            a :class:`PanelScore` with one entry per reference, in the mapping's order.
        """
        names = list(references)
        faces, embeddings = self.embed_faces(panel_image)
        if names and faces:
            reference_matrix = np.stack([np.asarray(references[n], np.float32).reshape(-1) for n in names])
            similarity = cosine_matrix(reference_matrix, embeddings)
            matched = assign_faces(similarity)
        else:
            similarity, matched = np.zeros((len(names), 0)), [None] * len(names)
        characters = [
            CharacterScore(name=name, score=float(similarity[i, j]), box=faces[j].box) if j is not None
            else CharacterScore(name=name, score=None, box=None)
            for i, (name, j) in enumerate(zip(names, matched))]
        return PanelScore(characters=tuple(characters), faces_found=len(faces),
                          recognizer=self.recognizer.name, face_boxes=tuple(f.box for f in faces))

    def score_candidates(self, images: Sequence[Any],
                         references: Mapping[str, np.ndarray]) -> list[PanelScore]:
        """:meth:`score_panel` for each of N candidate images of one panel (see :func:`pick_best`)."""
        return [self.score_panel(image, references) for image in images]


def _default_detector(face: "FaceConfig") -> FaceDetector:
    """dlib's detector (it ships in a wheel); RetinaFace's weights are the model loader's to fetch,
    so with ``detector: retinaface`` pass the loaded one (``components.face_detector``)."""
    if face.detector == "dlib":
        from faces.face_detection import DlibFaceDetector

        return DlibFaceDetector()
    raise ValueError(f"face.detector '{face.detector}' needs the loaded detector: pass "
                     "detector=components.face_detector (models.loading.load_face_detector)")


__all__ = [
    "CharacterScore", "DlibRecognizer", "FFHQ_TEMPLATE_512", "FaceSimilarity", "InsightFaceRecognizer",
    "NO_FACE_TEXT", "NoFaceFound", "PanelScore", "Recognizer", "RecognizerUnavailable", "as_rgb",
    "assign_faces", "cosine_matrix", "face_from_landmarks", "pick_best",
]
