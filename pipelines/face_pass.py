"""Identity face pass: after a panel is drawn, redraw each character's face with its identity.

A small face in a wide shot keeps little of its identity, and with several people the faces may
still borrow from each other. The pass (what ADetailer does for AUTOMATIC1111, with our signal
words; every choice in ``docs/PANELS.md``):

1. faces are detected in the drawn panel; only those with a detector score of at least
   ``generation.face_pass_min_score`` and a box of at least ``face_pass_min_size`` pixels are
   considered (:func:`usable_faces`: weak false detections and tiny background faces are left as
   drawn). They are matched to the panel's characters: by face similarity to each identity's
   reference (the Hungarian assignment of :func:`faces.similarity.assign_faces`) when a
   recogniser and references are given, and then only pairs with a cosine of at least
   ``face_pass_min_similarity`` get an identity (a bystander stays as drawn); else by place: the
   same assignment on the closeness of each face to each character's region;
2. each matched face is cropped square with a margin (:func:`crop_box`, shifted inward at the
   panel's borders), upscaled to ``face_pass_size``, and all faces of the panel are redrawn in
   ONE batched SDXL inpainting call built from the same components
   (``StableDiffusionXLInpaintPipeline.from_pipe``, no new weights), each with its character's
   signal words, the panel's sentence without the other characters (:func:`face_prompt`) and
   the panel's style, at ``face_pass_strength``;
3. diffusers binarises ``mask_image``, so the pipeline gets the soft mask's whole support
   (every pixel it may change) and the soft mask itself (:func:`face_mask`: 1 on the face box,
   linear to 0 at every crop side inside the panel, centred on the FACE, not the crop) blends
   the redrawn crop back here: every pixel outside the crops is unchanged, bit for bit.

:func:`redraw_faces` takes explicit jobs (boxes already matched), so it can be tested and reused
without a detector; :func:`match_faces` does the matching.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from PIL import Image

from faces.similarity import assign_faces, cosine_matrix
from pipelines.regions import Region

FaceBox = tuple[float, float, float, float]
FACE_PROMPT = "a close-up portrait of {}, detailed face"
FACE_SEED_STRIDE = 7919


@dataclass(frozen=True)
class FaceJob:
    """One face to redraw.

    Attributes:
        character: index of the character in the panel's cast (binding order).
        name: the character's full name.
        box: the detected face (x0, y0, x1, y1) in panel pixels.
        matched_by: ``"similarity"`` (recogniser + Hungarian) or ``"place"`` (region order).
        similarity: the face's cosine similarity to the character's reference (by similarity).
    """

    character: int
    name: str
    box: FaceBox
    matched_by: str = "place"
    similarity: float | None = None


@dataclass(frozen=True)
class FaceEdit:
    """A face the pass redrew: the job plus the pixel crop ``(x0, y0, x1, y1)`` it changed
    (``x1``/``y1`` exclusive) and the seed it used."""

    character: int
    name: str
    box: FaceBox
    crop: tuple[int, int, int, int]
    matched_by: str
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "box": [round(v, 1) for v in self.box], "crop": list(self.crop),
                "matched_by": self.matched_by}


def faces_caption(edits: Sequence[FaceEdit], width: int) -> str:
    """Which face is whose, in words: ``"left face: Ada Lovelace · right face: Alan Turing"``."""
    if not edits:
        return ""
    parts = []
    for edit in sorted(edits, key=lambda e: (e.box[0] + e.box[2]) / 2):
        centre = (edit.box[0] + edit.box[2]) / 2 / max(width, 1)
        where = "left" if centre < 1 / 3 else "right" if centre > 2 / 3 else "middle"
        parts.append(f"{where} face: {edit.name}")
    return " · ".join(parts)


@dataclass(frozen=True)
class IdentityMatcher:
    """Match faces by identity: a :class:`~faces.similarity.FaceSimilarity` (detector +
    recogniser) and each character's reference embedding (name -> float32 (D,))."""

    similarity: Any
    references: Mapping[str, np.ndarray]


def identity_matcher(face_config: Any, detector: Any, identities: Mapping[str, Any],
                     on_warning: Callable[[str], None] | None = None) -> IdentityMatcher | None:
    """An :class:`IdentityMatcher` on the preset's recogniser with a reference embedding per
    identity that has a library face crop (``face_path``); None when the recogniser is
    unavailable (``on_warning`` hears why) or no identity has a usable crop: faces are then
    matched by place."""
    from faces.recognizers import RecognizerUnavailable
    from faces.similarity import FaceSimilarity, NoFaceFound

    try:
        similarity = FaceSimilarity.from_config(face_config, detector=detector)
    except (RecognizerUnavailable, OSError, RuntimeError) as exc:
        if on_warning is not None:
            on_warning(f"face matching by identity is unavailable ({' '.join(str(exc).split())}); "
                       "faces are matched by place")
        return None
    references = {}
    for name, identity in identities.items():
        path = getattr(identity, "face_path", None)
        if path is None:
            continue
        try:
            with Image.open(path) as image:
                references[name] = similarity.reference(np.asarray(image.convert("RGB")))
        except (OSError, NoFaceFound, ValueError):
            continue
    return IdentityMatcher(similarity, references) if references else None


# ----------------------------------------------------------------------------- matching


def usable_faces(faces: Sequence[Any], min_score: float, min_size: float) -> list[int]:
    """Indices of the detections the pass may redraw: detector score >= ``min_score`` and box
    side (the longer one, pixels) >= ``min_size``. ``faces``: objects with ``box`` and ``score``
    (:class:`faces.face_detection.DetectedFace`)."""
    return [i for i, f in enumerate(faces)
            if f.score >= min_score and max(f.box[2] - f.box[0], f.box[3] - f.box[1]) >= min_size]


_CONNECTOR = r"(?:\s*,\s*|\s+(?:and|with|&)\s+)"


def panel_context(sentence: str, others: Sequence[str]) -> str:
    """The panel's sentence without the other characters' full names (and the ``and``/``with``/
    comma that joined each to the rest): ``"Ada Lovelace and Alan Turing laugh, wearing
    glasses"`` without Alan Turing -> ``"Ada Lovelace laugh, wearing glasses"``. Whole words,
    case-insensitive, possessive ``'s`` removed with the name."""
    text = " ".join(sentence.split())
    for other in sorted(others, key=len, reverse=True):
        name = r"\s+".join(re.escape(part) for part in other.split())
        word = rf"(?<![\w'\u2019-]){name}(?:['\u2019]s)?(?![\w-])"
        text = re.sub(rf"{_CONNECTOR}{word}|{word}{_CONNECTOR}|{word}", "", text, flags=re.IGNORECASE)
    return " ".join(text.split()).strip(" ,;")


def face_prompt(name: str, sentence: str = "", others: Sequence[str] = ()) -> str:
    """The face crop's prompt: :data:`FACE_PROMPT` for ``name``, then the panel's context
    (:func:`panel_context`: expression, glasses, clothes) when ``sentence`` is given."""
    context = panel_context(sentence, others) if sentence else ""
    return f"{FACE_PROMPT.format(name)}, {context}" if context else FACE_PROMPT.format(name)


def match_faces(boxes: Sequence[FaceBox], names: Sequence[str], regions: Sequence[Region],
                size: tuple[int, int], embeddings: np.ndarray | None = None,
                references: Mapping[str, np.ndarray] | None = None,
                min_similarity: float | None = None) -> list[FaceJob]:
    """Assign detected faces to characters; characters without a face get no job.

    Args:
        boxes: face boxes in pixels (detector order).
        names: the panel's characters (binding order); ``regions`` their 0-1 boxes.
        size: (width, height) of the panel in pixels.
        embeddings: (F, D) face embeddings, with ``references`` (name -> (D,)) for every name:
            match by similarity (Hungarian, maximum total cosine similarity).
        min_similarity: with similarity matching, a pair below this cosine gets no job (the
            face is left as drawn); None keeps every pair.
    Returns:
        jobs sorted by character index.
    """
    if not boxes or not names:
        return []
    if embeddings is not None and references is not None and all(n in references for n in names):
        reference_matrix = np.stack([np.asarray(references[n], np.float32).reshape(-1) for n in names])
        cosine = cosine_matrix(reference_matrix, embeddings)
        matched = assign_faces(cosine)
        jobs = [FaceJob(character=i, name=names[i], box=tuple(float(v) for v in boxes[j]),  # type: ignore[arg-type]
                        matched_by="similarity", similarity=float(cosine[i, j]))
                for i, j in enumerate(matched) if j is not None]
        return [job for job in jobs if min_similarity is None or job.similarity >= min_similarity]  # type: ignore[operator]
    width, height = size
    centres = np.array([((b[0] + b[2]) / 2 / width, (b[1] + b[3]) / 2 / height) for b in boxes])
    places = np.array([((r[0] + r[2]) / 2, (r[1] + r[3]) / 2) for r in regions])
    distance = np.linalg.norm(places[:, None, :] - centres[None, :, :], axis=-1)
    return [FaceJob(character=i, name=names[i], box=tuple(float(v) for v in boxes[j]),  # type: ignore[arg-type]
                    matched_by="place")
            for i, j in enumerate(assign_faces(-distance)) if j is not None]


# ----------------------------------------------------------------------------- geometry


def crop_box(box: FaceBox, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """A square crop around a face: side = face size x (1 + 2 x margin), shifted to lie inside
    the panel (and shrunk to the panel's shorter side if needed). Whole pixels, x1/y1 exclusive."""
    x0, y0, x1, y1 = box
    side = int(round(max(x1 - x0, y1 - y0) * (1 + 2 * margin)))
    side = max(8, min(side, width, height))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(round(min(max(cx - side / 2, 0), width - side)))
    top = int(round(min(max(cy - side / 2, 0), height - side)))
    return left, top, left + side, top + side


def face_mask(side: int, face: FaceBox, borders: tuple[bool, bool, bool, bool] = (False,) * 4) -> np.ndarray:
    """The soft mask of a square crop, centred on the face: float32 (side, side) in [0, 1].

    1 on the face box, falling linearly to 0 towards each side of the crop; the outermost row or
    column on a side inside the panel is exactly 0, so the crop's border and everything outside
    it keep their pixels. A side that lies on the panel's own border (``borders``: left, top,
    right, bottom) has nothing outside to match, so the mask stays 1 up to it: a face at the
    panel's edge is redrawn whole.

    Args:
        side: the crop's side in pixels.
        face: the face box in crop pixels (x0, y0, x1, y1); it may lie off the crop's centre
            (crops are shifted inward at the panel's borders).
        borders: which crop sides lie on the panel's border.
    """
    left, top, right, bottom = borders
    return np.minimum(_ramp(side, face[1], face[3], top, bottom)[:, None],
                      _ramp(side, face[0], face[2], left, right)[None, :]).astype(np.float32)


def _ramp(side: int, low: float, high: float, open_low: bool, open_high: bool) -> np.ndarray:
    """One axis of :func:`face_mask`: float32 (side,), 1 on [low, high], linear to 0 at each end
    that is not open."""
    last = side - 1
    low, high = min(max(low, 0.0), last), min(max(high, 0.0), last)
    position = np.arange(side, dtype=np.float32)
    axis = np.ones(side, dtype=np.float32)
    if not open_low:
        axis = np.minimum(axis, np.clip(position / max(low, 1.0), 0.0, 1.0))
        axis[0] = 0.0
    if not open_high:
        axis = np.minimum(axis, np.clip((last - position) / max(last - high, 1.0), 0.0, 1.0))
        axis[-1] = 0.0
    return axis


# ----------------------------------------------------------------------------- redrawing


Inpaint = Callable[[list[Image.Image], list[Image.Image], list[FaceJob], list[int]], list[Image.Image]]


def redraw_faces(image: Image.Image, jobs: Sequence[FaceJob], inpaint: Inpaint, *, margin: float,
                 size: int, seed: int) -> tuple[Image.Image, list[FaceEdit]]:
    """Redraw every job's face in one ``inpaint`` call; pixels outside the crops are unchanged.

    Args:
        image: the drawn panel (RGB).
        jobs: matched faces (:func:`match_faces` or explicit boxes).
        inpaint: ``(crops, masks, jobs, seeds) -> images``: redraws a batch of ``size`` x
            ``size`` crops where each mask (L, white = may change) says; one output per crop, in
            order (:meth:`pipelines.generation.PanelGenerator.inpaint_faces` on SDXL).
        margin: context around the face per side, as a fraction of the face size.
        size: the model's working size in pixels (crops are resized to it).
        seed: the panel candidate's seed; face ``k`` uses ``seed + 7919 * (k + 1)``.
    Returns:
        the new image and one :class:`FaceEdit` per job, in job order. Every crop is cut from
        the drawn panel; overlapping crops are blended in job order.
    """
    out = np.asarray(image.convert("RGB")).copy()
    height, width = out.shape[:2]
    crops, masks, alphas, boxes, seeds = [], [], [], [], []
    for k, job in enumerate(jobs):
        x0, y0, x1, y1 = crop_box(job.box, margin, width, height)
        face = (job.box[0] - x0, job.box[1] - y0, job.box[2] - x0, job.box[3] - y0)
        alpha = face_mask(x1 - x0, face, (x0 == 0, y0 == 0, x1 == width, y1 == height))
        support = Image.fromarray(np.where(alpha > 0, 255, 0).astype(np.uint8), "L")
        crops.append(Image.fromarray(out[y0:y1, x0:x1]).resize((size, size), Image.LANCZOS))
        masks.append(support.resize((size, size), Image.NEAREST))  # binary: diffusers binarises
        alphas.append(alpha)
        boxes.append((x0, y0, x1, y1))
        seeds.append(seed + FACE_SEED_STRIDE * (k + 1))
    redrawn = inpaint(crops, masks, list(jobs), seeds) if jobs else []
    edits = []
    for job, (x0, y0, x1, y1), alpha, face_seed, face in zip(jobs, boxes, alphas, seeds, redrawn):
        side = x1 - x0
        back = np.asarray(face.convert("RGB").resize((side, side), Image.LANCZOS), dtype=np.float32)
        region = out[y0:y1, x0:x1].astype(np.float32)
        blended = region * (1 - alpha[..., None]) + back * alpha[..., None]
        out[y0:y1, x0:x1] = np.where(alpha[..., None] > 0, np.clip(blended.round(), 0, 255),
                                     region).astype(np.uint8)
        edits.append(FaceEdit(character=job.character, name=job.name, box=job.box,
                              crop=(x0, y0, x1, y1), matched_by=job.matched_by, seed=face_seed))
    return Image.fromarray(out), edits


__all__ = ["FACE_PROMPT", "FaceEdit", "FaceJob", "IdentityMatcher", "crop_box", "face_mask", "face_prompt",
           "faces_caption", "identity_matcher", "match_faces", "panel_context",
           "redraw_faces", "usable_faces"]
