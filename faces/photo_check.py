"""The one photo check before training: a readable photo with exactly one person's face.

The app's upload (:meth:`serving.training_service.TrainingService.prepare_photo`) and the
training CLI (``python -m stableidentity train``, through
:func:`stableidentity.trainer.train_identity`) both call :func:`check_photo`, so a photo is
accepted or refused the same way everywhere.

Counting faces (:func:`count_faces`): the detector's raw list holds weak false detections (dlib's
HOG detector runs at threshold 0.0, and a patch of jacket or hair scores 0.1-0.2), so a face
counts only when

* its detector score is at least ``face.min_detection_score`` (in the detector's own units:
  dlib HOG scores a clear frontal face about 1, a false one below 0.3; RetinaFace already drops
  everything under its own threshold 0.8, so 0.3 changes nothing there), and
* its box is at least ``face.min_face_size`` pixels on its longer side (in photo pixels), and
* it is at least :data:`SECOND_FACE_RATIO` of the largest counted face's size
  (:func:`faces.face_prep.face_size`): a small face far in the background does not refuse a
  portrait.

A photo with two or more counted faces is refused: "the photo shows 2 faces; upload (or crop to)
a photo of one person".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from faces.face_detection import DetectedFace, FaceDetector
from faces.face_prep import AlignedFace, FacePrepError, detect_faces, face_size, prepare_face
from faces.photos import LoadedPhoto, PhotoInput, load_photo

#: A second face counts when it is at least this fraction of the largest face's size.
SECOND_FACE_RATIO = 0.5


def count_faces(faces: Sequence[DetectedFace], min_score: float, min_size: float) -> list[DetectedFace]:
    """The detections that count as people's faces (see the module docstring), largest first.

    Args:
        faces: detections in photo pixels (:func:`faces.face_prep.detect_faces`).
        min_score: lowest detector score that counts (``face.min_detection_score``).
        min_size: smallest box side that counts, in pixels (``face.min_face_size``).
    """
    kept = [f for f in faces
            if f.score >= min_score and max(f.box[2] - f.box[0], f.box[3] - f.box[1]) >= min_size]
    kept.sort(key=face_size, reverse=True)
    if not kept:
        return []
    largest = face_size(kept[0])
    return [f for f in kept if face_size(f) >= SECOND_FACE_RATIO * largest]


def check_photo(photo: PhotoInput | LoadedPhoto, detector: FaceDetector, face_config: Any) -> AlignedFace:
    """Read ``photo``, refuse it unless it shows one person, and align that face.

    Args:
        photo: a path, bytes, PIL image, RGB array or an already decoded :class:`LoadedPhoto`.
        detector: the components' face detector.
        face_config: the preset's ``face`` section (``min_image_size``, ``aligned_size``,
            ``min_detection_score``, ``min_face_size``).
    Returns:
        the aligned face (:func:`faces.face_prep.prepare_face`).
    Raises:
        FacePrepError: unreadable, too small, no face, or two or more faces (one line).
    """
    loaded = photo if isinstance(photo, LoadedPhoto) else load_photo(photo)
    aligned = prepare_face(loaded, detector, min_image_size=face_config.min_image_size,
                           size=face_config.aligned_size)
    counted = count_faces(detect_faces(np.ascontiguousarray(loaded.rgb), detector),
                          face_config.min_detection_score, face_config.min_face_size)
    if len(counted) > 1:
        raise FacePrepError(f"the photo shows {len(counted)} faces; upload (or crop to) a photo of one "
                            "person")
    return aligned


__all__ = ["SECOND_FACE_RATIO", "check_photo", "count_faces"]
