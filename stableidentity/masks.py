"""Face and hair masks of an aligned face, for StableIdentity's masked diffusion loss.

The masks come from face parsing with facexlib's BiSeNet (19 CelebAMask-HQ classes):

* face = classes 1-8 and 10-13 (skin, brows, eyes, glasses, ears, nose, mouth, lips),
* hair = class 17.

A parse can be useless (the ``tiny`` preset's BiSeNet has random weights; a real one can fail on
drawings or heavy occlusion). :func:`face_masks` therefore checks the parsed face against the
aligned landmarks and, when it is implausible, falls back to masks drawn from the landmarks (an
ellipse around the face and a cap above it for hair). :attr:`FaceMasks.source` says which was
used. Masks are full-resolution booleans here; :mod:`stableidentity.augment` moves them with the
image and shrinks them to the latent grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch

#: CelebAMask-HQ label ids (facexlib order).
SKIN, L_BROW, R_BROW, L_EYE, R_EYE, EYE_GLASSES, L_EAR, R_EAR, EAR_RING, NOSE, MOUTH, U_LIP, L_LIP, \
    NECK, NECK_LACE, CLOTH, HAIR, HAT = range(1, 19)
FACE_CLASSES: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13)
HAIR_CLASSES: tuple[int, ...] = (HAIR,)
#: facexlib's BiSeNet input normalisation (ImageNet statistics, RGB in [0, 1]).
PARSER_MEAN = (0.485, 0.456, 0.406)
PARSER_STD = (0.229, 0.224, 0.225)
PARSER_SIZE = 512

MaskSource = Literal["parser", "landmarks"]


@dataclass(frozen=True)
class FaceMasks:
    """Boolean masks (H, W) of the aligned image and where they came from.

    Attributes:
        face: True on face pixels (skin, brows, eyes, glasses, ears, nose, mouth, lips).
        hair: True on hair pixels.
        source: "parser" (BiSeNet) or "landmarks" (fallback drawn from the 5 landmarks).
        reason: why the parse was rejected ("" when it was used).
    """

    face: np.ndarray
    hair: np.ndarray
    source: MaskSource
    reason: str = ""

    def to_tensor(self) -> torch.Tensor:
        """float32 (2, H, W): channel 0 face, channel 1 hair, values 0/1."""
        return torch.from_numpy(np.stack([self.face, self.hair]).astype(np.float32))


# ----------------------------------------------------------------------------- parsing

def parse_face(parser: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    """Per-pixel CelebAMask-HQ class ids of an aligned face.

    Args:
        parser: facexlib ``BiSeNet(num_class=19)`` in eval mode (e.g. ``components.face_parser``).
        image: uint8 RGB (H, W, 3); parsed at 512x512 and resized back (nearest) if needed.
    Returns:
        int64 array (H, W) of class ids 0..18 (``output[0].argmax`` over classes).
    """
    h, w = image.shape[:2]
    param = next(parser.parameters())
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device=param.device, dtype=torch.float32)
    x = x.permute(2, 0, 1).unsqueeze(0) / 255.0
    if (h, w) != (PARSER_SIZE, PARSER_SIZE):
        x = torch.nn.functional.interpolate(x, size=(PARSER_SIZE, PARSER_SIZE), mode="bilinear",
                                            align_corners=False, antialias=True)
    mean = torch.tensor(PARSER_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(PARSER_STD, device=x.device).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = parser((x - mean) / std)[0]
    labels = logits.argmax(dim=1, keepdim=True).float()
    if (h, w) != (PARSER_SIZE, PARSER_SIZE):
        labels = torch.nn.functional.interpolate(labels, size=(h, w), mode="nearest")
    return labels[0, 0].to(torch.int64).cpu().numpy()


def masks_from_parsing(parsing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(face, hair) boolean masks from a class-id map (:data:`FACE_CLASSES`, :data:`HAIR_CLASSES`)."""
    return np.isin(parsing, FACE_CLASSES), np.isin(parsing, HAIR_CLASSES)


# ----------------------------------------------------------------------------- landmark geometry

@dataclass(frozen=True)
class _FaceFrame:
    """Face-aligned frame from 5 landmarks: eye centre, unit right/down axes, eye and eye-mouth spans."""

    eyes: np.ndarray
    right: np.ndarray
    down: np.ndarray
    eye_span: float
    eye_mouth: float

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray) -> "_FaceFrame":
        lm = np.asarray(landmarks, dtype=np.float64)
        eyes, mouth = lm[0:2].mean(axis=0), lm[3:5].mean(axis=0)
        right = lm[1] - lm[0]
        eye_span = float(np.linalg.norm(right))
        right = right / max(eye_span, 1e-6)
        down = np.array([-right[1], right[0]])  # image y grows downwards
        return cls(eyes=eyes, right=right, down=down, eye_span=eye_span,
                   eye_mouth=float(max(np.dot(mouth - eyes, down), 1e-6)))

    def ellipse(self, shape: tuple[int, int], centre_down: float, half_w: float, half_h: float) -> np.ndarray:
        """Filled ellipse, centre ``centre_down`` x eye-mouth below the eyes, half-axes in units of
        the eye span (width) and eye-mouth distance (height)."""
        centre = self.eyes + centre_down * self.eye_mouth * self.down
        angle = float(np.degrees(np.arctan2(self.right[1], self.right[0])))
        canvas = np.zeros(shape, dtype=np.uint8)
        cv2.ellipse(canvas, (int(round(centre[0] * 16)), int(round(centre[1] * 16))),
                    (int(round(half_w * self.eye_span * 16)), int(round(half_h * self.eye_mouth * 16))),
                    angle, 0, 360, 1, thickness=-1, lineType=cv2.LINE_8, shift=4)
        return canvas.astype(bool)

    def below_eyes(self, shape: tuple[int, int]) -> np.ndarray:
        """Signed distance along ``down`` from the eye line, in units of the eye-mouth distance."""
        ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
        return ((xs - self.eyes[0]) * self.down[0] + (ys - self.eyes[1]) * self.down[1]) / self.eye_mouth


def landmark_masks(landmarks: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Face and hair masks drawn from five landmarks (fallback when parsing fails).

    Face: an ellipse from the forehead to the chin (centre 0.45 eye-mouth distances below the eyes,
    half-width 1.0 eye span, half-height 1.25 eye-mouth distances), tilted with the eye line.
    Hair: a larger ellipse (centre 0.1 below the eyes, half-axes 1.45 and 1.75), minus the face,
    above the level 0.3 eye-mouth distances below the eyes (a cap over the forehead and temples).
    """
    frame = _FaceFrame.from_landmarks(landmarks)
    face = frame.ellipse(shape, centre_down=0.45, half_w=1.0, half_h=1.25)
    outer = frame.ellipse(shape, centre_down=0.1, half_w=1.45, half_h=1.75)
    hair = outer & ~face & (frame.below_eyes(shape) < 0.3)
    return face, hair


def _inside(mask: np.ndarray, point: np.ndarray) -> bool:
    x, y = int(round(float(point[0]))), int(round(float(point[1])))
    return 0 <= y < mask.shape[0] and 0 <= x < mask.shape[1] and bool(mask[y, x])


def parse_plausibility(face: np.ndarray, landmarks: np.ndarray) -> str:
    """Why a parsed face mask is implausible for these landmarks ("" if it is plausible).

    Checks: covers 2%-90% of the image; contains the landmark centroid and the nose; covers at
    least 70% of the landmark face ellipse's core; at least 70% of it lies within the (enlarged)
    landmark face region.
    """
    fraction = float(face.mean())
    if fraction < 0.02:
        return f"parsed face covers {fraction:.1%} of the image (empty)"
    if fraction > 0.9:
        return f"parsed face covers {fraction:.1%} of the image (everything)"
    centroid = np.asarray(landmarks, dtype=np.float64).mean(axis=0)
    if not _inside(face, centroid) or not _inside(face, landmarks[2]):
        return "parsed face does not contain the landmark centre"
    frame = _FaceFrame.from_landmarks(landmarks)
    core = frame.ellipse(face.shape, centre_down=0.5, half_w=0.6, half_h=0.8)
    coverage = float(face[core].mean()) if core.any() else 0.0
    if coverage < 0.7:
        return f"parsed face covers {coverage:.0%} of the inner face"
    region = frame.ellipse(face.shape, centre_down=0.45, half_w=1.6, half_h=1.9)
    precision = float(region[face].mean())
    if precision < 0.7:
        return f"{1 - precision:.0%} of the parsed face lies far from the landmarks"
    return ""


def face_masks(parser: torch.nn.Module | None, image: np.ndarray, landmarks: np.ndarray) -> FaceMasks:
    """Face and hair masks of an aligned face: BiSeNet parsing, landmark fallback if implausible.

    Args:
        parser: the face parser (``components.face_parser``), or None to use landmarks only.
        image: aligned uint8 RGB (H, W, 3), e.g. :attr:`AlignedFace.image`.
        landmarks: (5, 2) landmarks in ``image`` pixels.
    """
    shape = image.shape[:2]
    reason = "no face parser"
    if parser is not None:
        face, hair = masks_from_parsing(parse_face(parser, image))
        reason = parse_plausibility(face, landmarks)
        if not reason:
            return FaceMasks(face=face, hair=hair, source="parser")
    face, hair = landmark_masks(landmarks, shape)
    return FaceMasks(face=face, hair=hair, source="landmarks", reason=reason)


__all__ = ["FACE_CLASSES", "HAIR_CLASSES", "FaceMasks", "MaskSource", "face_masks", "landmark_masks",
           "masks_from_parsing", "parse_face", "parse_plausibility"]
