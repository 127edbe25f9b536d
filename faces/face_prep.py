"""Face preparation: any photo -> the largest face, aligned to the FFHQ 512x512 template.

StableIdentity trains on one FFHQ-aligned face. Users upload ordinary photos (phone shots, group
photos, scans), so this module turns any of them into that crop:

1. read the photo (path, bytes, PIL image or RGB array) with :func:`faces.photos.load_photo`:
   size-capped, EXIF orientation applied, every image mode made into 8-bit RGB;
2. detect faces on a copy scaled to a detector-friendly size (huge photos shrink for speed, tiny
   ones grow so dlib's 40 px minimum face size is met) and refine the chosen face's landmarks on a
   crop of the full-resolution photo, so shrinking costs no accuracy;
3. keep the confident detections and pick the largest one (a warning says when there were several);
4. fit a similarity transform (rotation, uniform scale, translation; ``cv2.estimateAffinePartial2D``
   with LMEDS) from the five landmarks to :data:`FFHQ_TEMPLATE_512` and warp to 512x512.

Every user-facing failure raises :class:`FacePrepError` with a one-line message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from faces.face_detection import DetectedFace, FaceDetector
from faces.photos import LoadedPhoto, PhotoError, PhotoInput, load_photo

#: Five landmarks of the FFHQ alignment at 512x512 (x, y pixels): left eye, right eye, nose tip,
#: left mouth corner, right mouth corner ("left" = smaller x in the image).
FFHQ_TEMPLATE_512 = np.array([[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
                              [201.26117, 371.41043], [313.08905, 371.15118]], dtype=np.float32)
ALIGNED_SIZE = 512
#: Colour of the area outside the photo after warping (facexlib's FaceRestoreHelper value).
BORDER_RGB = (135, 133, 132)
#: Longest side of the image the detector sees: bigger photos are shrunk, smaller ones enlarged.
MAX_DETECT_SIDE = 1024
MIN_DETECT_SIDE = 512
#: Face width (pixels) at which landmarks are refined when the detection copy was shrunk.
REFINE_FACE_SIDE = 320
#: Detections weaker than this are ignored when a stronger one exists (per back-end score scale).
#: dlib HOG: true faces score ~0.35-3, the false face on the astronaut's suit 0.12.
MIN_CONFIDENCE = {"DlibFaceDetector": 0.25, "RetinaFaceDetector": 0.9}
#: Eye distance in the photo below which the crop is mostly upsampled blur (warning only).
SMALL_FACE_EYE_DISTANCE = 40.0


#: Every unusable photo, from reading it (:mod:`faces.photos`: missing, too large, not
#: an image) to finding its face, raises this ``ValueError`` with one line meant for the user.
FacePrepError = PhotoError


@dataclass(frozen=True)
class AlignedFace:
    """The chosen face warped onto the FFHQ template.

    Attributes:
        image: uint8 RGB array (512, 512, 3).
        landmarks: float32 (5, 2), the detected landmarks mapped into the aligned image (pixels).
        source_box: (x0, y0, x1, y1) of the face in the (EXIF-rotated) photo, pixels.
        warnings: human-readable notes (several faces, small face, weak detection).
        transform: float64 (2, 3) similarity matrix, photo pixels -> aligned pixels.
    """

    image: np.ndarray
    landmarks: np.ndarray
    source_box: tuple[float, float, float, float]
    warnings: list[str] = field(default_factory=list)
    transform: np.ndarray | None = None

    def to_pil(self) -> Image.Image:
        """The aligned crop as a PIL image (thumbnail for the identity library)."""
        return Image.fromarray(self.image)


# ----------------------------------------------------------------------------- detection

def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=interpolation)


def _scaled_face(face: DetectedFace, scale: float, offset: tuple[float, float] = (0.0, 0.0)) -> DetectedFace:
    """Map a detection from a (cropped, scaled) copy back to photo pixels: p / scale + offset."""
    ox, oy = offset
    x0, y0, x1, y1 = face.box
    box = (x0 / scale + ox, y0 / scale + oy, x1 / scale + ox, y1 / scale + oy)
    landmarks = (face.landmarks / scale + np.array([ox, oy], dtype=np.float32)).astype(np.float32)
    return DetectedFace(box=box, score=face.score, landmarks=landmarks)


def detect_faces(image: np.ndarray, detector: FaceDetector) -> list[DetectedFace]:
    """All faces in ``image`` (RGB uint8), in photo pixels, most confident first.

    The detector sees a copy whose longest side lies in [MIN_DETECT_SIDE, MAX_DETECT_SIDE]; if it
    finds nothing, once more with a replicated 25% border (faces cropped tight to the frame).
    """
    h, w = image.shape[:2]
    longest = max(h, w)
    scale = 1.0
    if longest > MAX_DETECT_SIDE:
        scale = MAX_DETECT_SIDE / longest
    elif longest < MIN_DETECT_SIDE:
        scale = MIN_DETECT_SIDE / longest
    small = _resize(image, scale) if scale != 1.0 else image
    faces = [_scaled_face(f, scale) for f in detector.detect(small)]
    if not faces:
        pad = max(small.shape[:2]) // 4
        padded = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        faces = [_scaled_face(f, scale, (-pad / scale, -pad / scale)) for f in detector.detect(padded)]
    return faces


def refine_landmarks(image: np.ndarray, face: DetectedFace, detector: FaceDetector) -> DetectedFace:
    """Re-detect ``face`` on a crop of the full-resolution photo for sub-pixel-accurate landmarks.

    The crop spans three face widths around the box and is scaled so the face is about
    REFINE_FACE_SIDE pixels wide (never enlarged). Returns ``face`` unchanged if nothing matches.
    """
    x0, y0, x1, y1 = face.box
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    h, w = image.shape[:2]
    left, top = int(max(0, cx - 1.5 * side)), int(max(0, cy - 1.5 * side))
    right, bottom = int(min(w, cx + 1.5 * side)), int(min(h, cy + 1.5 * side))
    crop = image[top:bottom, left:right]
    scale = min(1.0, REFINE_FACE_SIDE / max(side, 1.0))
    small = _resize(crop, scale) if scale != 1.0 else crop
    candidates = [_scaled_face(f, scale, (left, top)) for f in detector.detect(np.ascontiguousarray(small))]
    best, best_dist = None, 0.25 * side  # a match must be centred within a quarter face
    for cand in candidates:
        bx0, by0, bx1, by1 = cand.box
        dist = float(np.hypot((bx0 + bx1) / 2 - cx, (by0 + by1) / 2 - cy))
        if dist < best_dist:
            best, best_dist = cand, dist
    if best is None:
        return face
    return DetectedFace(box=best.box, score=face.score, landmarks=best.landmarks)


def face_size(face: DetectedFace) -> float:
    """Size of a face in pixels: RMS distance of its five landmarks from their centroid.

    Continuous and rotation-invariant; dlib's boxes come in a few fixed sizes per pyramid level, so
    box area ties between faces of visibly different size.
    """
    points = np.asarray(face.landmarks, dtype=np.float64)
    return float(np.sqrt(((points - points.mean(axis=0)) ** 2).sum(axis=1).mean()))


def select_largest_face(faces: list[DetectedFace], min_confidence: float) -> tuple[DetectedFace, list[str]]:
    """The largest face (:func:`face_size`) among confident detections, plus warnings.

    "Confident" means ``score >= min_confidence``; if no detection reaches it, the most confident
    one is used (with a warning). ``faces`` must be non-empty.
    """
    confident = [f for f in faces if f.score >= min_confidence]
    warnings: list[str] = []
    if not confident:
        confident = [max(faces, key=lambda f: f.score)]
        warnings.append("the face was detected with low confidence; a clearer photo may work better")
    chosen = max(confident, key=lambda f: (face_size(f), f.area))
    if len(confident) > 1:
        warnings.append(f"{len(confident)} faces found; using the largest")
    return chosen, warnings


# ----------------------------------------------------------------------------- alignment

def similarity_transform(landmarks: np.ndarray, template: np.ndarray = FFHQ_TEMPLATE_512) -> np.ndarray:
    """(2, 3) similarity matrix mapping ``landmarks`` (5, 2) onto ``template`` (LMEDS fit)."""
    matrix, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32), template.astype(np.float32),
                                            method=cv2.LMEDS)
    if matrix is None or not np.all(np.isfinite(matrix)):
        raise FacePrepError("could not align the face (landmarks are degenerate); try another photo")
    return matrix.astype(np.float64)


def warp_to_template(image: np.ndarray, matrix: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """Warp ``image`` with ``matrix`` into a (size, size, 3) crop.

    When the warp shrinks by more than 2x, the photo is first reduced with area averaging, so the
    crop is not aliased.
    """
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        pre = min(1.0, 2.0 * scale)
        image = _resize(image, pre)
        matrix = matrix @ np.diag([1.0 / pre, 1.0 / pre, 1.0])
    interpolation = cv2.INTER_CUBIC if scale > 1.0 else cv2.INTER_LINEAR
    return cv2.warpAffine(image, matrix, (size, size), flags=interpolation,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=BORDER_RGB)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to (N, 2) points."""
    return (points.astype(np.float64) @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def prepare_face(photo: PhotoInput | LoadedPhoto, detector: FaceDetector, *, min_image_size: int = 64,
                 size: int = ALIGNED_SIZE, min_confidence: float | None = None) -> AlignedFace:
    """Read ``photo``, find its largest confident face and align it to the FFHQ template.

    Args:
        photo: a path, bytes, PIL image, RGB array, or an already decoded :class:`LoadedPhoto`.
        detector: e.g. ``components.face_detector``.
        min_image_size: smallest accepted photo side in pixels (``config.face.min_image_size``).
        size: side of the output crop (the template is scaled from 512).
        min_confidence: detection score that counts as "confident"; default per detector type.
    Raises:
        FacePrepError: unreadable photo, photo too small, or no face found.
    """
    loaded = photo if isinstance(photo, LoadedPhoto) else load_photo(photo)
    rgb = loaded.rgb
    h, w = rgb.shape[:2]
    if min(h, w) < min_image_size:
        raise FacePrepError(f"the photo is too small ({w}x{h} pixels); "
                            f"use one at least {min_image_size} pixels on each side")
    if int(rgb.max()) - int(rgb.min()) < 8:
        raise FacePrepError("no face found: the photo is blank; upload a clear photo of one person's face")
    faces = detect_faces(rgb, detector)
    if not faces:
        raise FacePrepError("no face found in the photo; upload a clear, front-facing photo of one person")
    if min_confidence is None:
        min_confidence = MIN_CONFIDENCE.get(type(detector).__name__, float("-inf"))
    face, warnings = select_largest_face(faces, min_confidence)
    if max(h, w) > MAX_DETECT_SIDE:
        face = refine_landmarks(rgb, face, detector)
    eye_distance = float(np.linalg.norm(face.landmarks[1] - face.landmarks[0]))
    if eye_distance < SMALL_FACE_EYE_DISTANCE:
        warnings.append(f"the face is small ({eye_distance:.0f} pixels between the eyes); "
                        "a closer photo gives a better likeness")
    template = FFHQ_TEMPLATE_512 * (size / ALIGNED_SIZE)
    matrix = similarity_transform(face.landmarks, template)
    aligned = warp_to_template(rgb, matrix, size)
    return AlignedFace(image=aligned, landmarks=transform_points(face.landmarks, matrix),
                       source_box=tuple(float(v) for v in face.box), warnings=warnings,
                       transform=matrix)


__all__ = ["ALIGNED_SIZE", "FFHQ_TEMPLATE_512", "AlignedFace", "FacePrepError", "LoadedPhoto",
           "PhotoInput", "detect_faces", "face_size", "load_photo", "prepare_face", "refine_landmarks",
           "select_largest_face", "similarity_transform", "transform_points", "warp_to_template"]
