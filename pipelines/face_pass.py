"""Identity face pass: after a panel is drawn, redraw each character's face with its identity.

A small face in a wide shot keeps little of its identity, and with several people the faces may
still borrow from each other. The pass (what ADetailer does for AUTOMATIC1111, with our signal
words):

1. faces are detected in the drawn panel and matched to the panel's characters: by face
   similarity to each identity's reference (the Hungarian assignment of
   :func:`faces.similarity.assign_faces`) when a recogniser and references are given,
   else by place: the same assignment on the closeness of each face to each character's region;
2. each matched face is cropped square with a margin (:func:`crop_box`), upscaled to the model's
   size, and redrawn by SDXL inpainting built from the same components
   (``StableDiffusionXLInpaintPipeline.from_pipe``, no new weights) with that character's signal
   words and the panel's style, at ``face_pass_strength``;
3. the result is scaled back and pasted with a feathered mask that is zero on the crop's border
   (:func:`paste_alpha`): every pixel outside the crops is unchanged, bit for bit.

:func:`redraw_faces` takes explicit jobs (boxes already matched), so it can be tested and reused
without a detector; :func:`match_faces` does the matching.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from PIL import Image

from pipelines.regions import Region
from faces.similarity import assign_faces, cosine_matrix

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
    """

    character: int
    name: str
    box: FaceBox
    matched_by: str = "place"


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


def match_faces(boxes: Sequence[FaceBox], names: Sequence[str], regions: Sequence[Region],
                size: tuple[int, int], embeddings: np.ndarray | None = None,
                references: Mapping[str, np.ndarray] | None = None) -> list[FaceJob]:
    """Assign detected faces to characters; characters without a face get no job.

    Args:
        boxes: face boxes in pixels (detector order).
        names: the panel's characters (binding order); ``regions`` their 0-1 boxes.
        size: (width, height) of the panel in pixels.
        embeddings: (F, D) face embeddings, with ``references`` (name -> (D,)) for every name:
            match by similarity (Hungarian, maximum total cosine similarity).
    Returns:
        jobs sorted by character index.
    """
    if not boxes or not names:
        return []
    if embeddings is not None and references is not None and all(n in references for n in names):
        reference_matrix = np.stack([np.asarray(references[n], np.float32).reshape(-1) for n in names])
        matched, how = assign_faces(cosine_matrix(reference_matrix, embeddings)), "similarity"
    else:
        width, height = size
        centres = np.array([((b[0] + b[2]) / 2 / width, (b[1] + b[3]) / 2 / height) for b in boxes])
        places = np.array([((r[0] + r[2]) / 2, (r[1] + r[3]) / 2) for r in regions])
        distance = np.linalg.norm(places[:, None, :] - centres[None, :, :], axis=-1)
        matched, how = assign_faces(-distance), "place"
    return [FaceJob(character=i, name=names[i], box=tuple(float(v) for v in boxes[j]),  # type: ignore[arg-type]
                    matched_by=how)
            for i, j in enumerate(matched) if j is not None]


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


def paste_alpha(side: int, face_fraction: float) -> np.ndarray:
    """The paste mask of a square crop: float32 (side, side) in [0, 1].

    1 on the central ``face_fraction`` of the crop (the face), falling linearly to 0 towards
    the border; the outermost ring of pixels is exactly 0, so the crop's border and everything
    outside it keep their pixels.
    """
    centre = (side - 1) / 2
    core = face_fraction * side / 2
    ramp = max(centre - core, 1.0)
    distance = np.abs(np.arange(side, dtype=np.float32) - centre)
    axis = np.clip((centre - distance) / ramp, 0.0, 1.0)
    axis[[0, -1]] = 0.0
    return np.minimum(axis[:, None], axis[None, :]).astype(np.float32)


# ----------------------------------------------------------------------------- redrawing


Inpaint = Callable[[Image.Image, Image.Image, FaceJob, int], Image.Image]


def redraw_faces(image: Image.Image, jobs: Sequence[FaceJob], inpaint: Inpaint, *, margin: float,
                 size: int, seed: int) -> tuple[Image.Image, list[FaceEdit]]:
    """Redraw every job's face; pixels outside the crops are unchanged.

    Args:
        image: the drawn panel (RGB).
        jobs: matched faces (:func:`match_faces` or explicit boxes).
        inpaint: ``(crop, mask, job, seed) -> image``: redraws a ``size`` x ``size`` crop where
            the mask (L, white = redraw) says; :meth:`FacePass.inpaint` on SDXL.
        margin: context around the face per side, as a fraction of the face size.
        size: the model's working size in pixels (crops are upscaled to it).
        seed: the panel candidate's seed; face ``k`` uses ``seed + 7919 * (k + 1)``.
    Returns:
        the new image and one :class:`FaceEdit` per job, in job order.
    """
    out = np.asarray(image.convert("RGB")).copy()
    height, width = out.shape[:2]
    edits = []
    for k, job in enumerate(jobs):
        x0, y0, x1, y1 = crop_box(job.box, margin, width, height)
        side = x1 - x0
        face_side = max(job.box[2] - job.box[0], job.box[3] - job.box[1])
        alpha = paste_alpha(side, min(1.0, face_side / side))
        crop = Image.fromarray(out[y0:y1, x0:x1])
        mask = Image.fromarray((alpha * 255).round().astype(np.uint8), "L")
        face_seed = seed + FACE_SEED_STRIDE * (k + 1)
        redrawn = inpaint(crop.resize((size, size), Image.LANCZOS), mask.resize((size, size), Image.BILINEAR),
                          job, face_seed)
        back = np.asarray(redrawn.convert("RGB").resize((side, side), Image.LANCZOS), dtype=np.float32)
        region = out[y0:y1, x0:x1].astype(np.float32)
        blended = region * (1 - alpha[..., None]) + back * alpha[..., None]
        out[y0:y1, x0:x1] = np.where(alpha[..., None] > 0, np.clip(blended.round(), 0, 255),
                                     region).astype(np.uint8)
        edits.append(FaceEdit(character=job.character, name=job.name, box=job.box,
                              crop=(x0, y0, x1, y1), matched_by=job.matched_by, seed=face_seed))
    return Image.fromarray(out), edits


__all__ = ["FACE_PROMPT", "FaceEdit", "FaceJob", "IdentityMatcher", "crop_box", "identity_matcher", "faces_caption", "match_faces",
           "paste_alpha", "redraw_faces"]
