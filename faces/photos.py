"""Photos from users: bounded reading, and every common image mode made into 8-bit RGB.

This is the one place a photo file becomes pixels, for training (:mod:`stableidentity.trainer`,
``python -m stableidentity train``), the app's upload checks and face preparation:

* the file is read with a cap (``photo_bytes`` in ``configs/limits.yaml``) and opened only with
  the decoders of :data:`FORMATS`; its pixel count (``photo_pixels``) is checked from the header
  before any pixel is decoded, and a photo over ``photo_work_pixels`` is downscaled to that size
  (JPEGs decoded at a reduced scale) before face detection sees it;
* :func:`to_rgb8` applies the EXIF orientation and converts every mode to uint8 RGB: 16-bit and
  32-bit grayscale are *scaled* to 0-255 (not clipped), CMYK, palette, bilevel and YCbCr are
  converted, and transparency (RGBA, LA, PA, palette with a transparent colour) is composited
  onto white.

Every failure is a :class:`PhotoError` (a ``ValueError``) with one line for the user.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from configs import Limits, load_limits

#: Decoders tried when a photo is opened (Pillow format names; phone MPO files open as JPEG);
#: others are never run.
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
FORMAT_TEXT = "a JPEG, PNG, WebP, BMP, TIFF or GIF photo"
_HIGH_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})

PhotoInput = Union[str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray]


class PhotoError(ValueError):
    """A photo that cannot be used; the message is one line meant for the user."""


@dataclass(frozen=True)
class LoadedPhoto:
    """A decoded photo: RGB uint8 (H, W, 3) plus the original file bytes when there were any."""

    rgb: np.ndarray
    raw_bytes: bytes | None


def scale_to_8bit(values: np.ndarray) -> np.ndarray:
    """Gray values of a high-bit-depth image -> uint8, scaled, never clipped.

    uint16 (16-bit files) is divided by 257 (65535 -> 255). Wider or float data is scaled by the
    range it uses: floats within [0, 1] times 255, values within [0, 255] kept, within
    [0, 65535] divided by 257, anything else stretched from its minimum to its maximum.
    """
    kind, bits = values.dtype.kind, values.dtype.itemsize * 8
    data = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(data.min(initial=0.0)), float(data.max(initial=0.0))
    if kind == "u" and bits == 16:
        scaled = data / 257.0
    elif kind == "f" and low >= 0 and high <= 1.0:
        scaled = data * 255.0
    elif low >= 0 and high <= 255:
        scaled = data
    elif low >= 0 and high <= 65535:
        scaled = data / 257.0
    else:
        scaled = (data - low) * (255.0 / max(high - low, 1e-12))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def to_rgb8(image: Image.Image) -> np.ndarray:
    """Any PIL image -> EXIF-oriented RGB uint8 (H, W, 3) (see the module docstring).

    Raises:
        PhotoError: a mode Pillow cannot convert to RGB.
    """
    try:
        image = ImageOps.exif_transpose(image) or image
    except Exception:  # noqa: BLE001 - a broken EXIF block only loses the orientation
        pass
    if image.mode in _HIGH_BIT_MODES:
        gray = scale_to_8bit(np.asarray(image))
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    has_alpha = image.mode in _ALPHA_MODES or \
        (image.mode in ("P", "L", "RGB") and "transparency" in image.info)
    try:
        if has_alpha:
            image = image.convert("RGBA")
            canvas = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(canvas, image)
        rgb = image.convert("RGB")
    except (ValueError, OSError):
        raise PhotoError(f"photos in the {image.mode} colour mode are not supported; save it as "
                         "an RGB JPEG or PNG") from None
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def array_to_rgb8(array: np.ndarray) -> np.ndarray:
    """An image array -> RGB uint8: (H, W), (H, W, 3) or (H, W, 4) of uint8, uint16 or float
    in [0, 1] (alpha dropped, 16-bit scaled)."""
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise PhotoError(f"expected an RGB image array (H, W, 3), got shape {tuple(array.shape)}")
    array = array[..., :3]
    if array.dtype == np.uint16:
        array = scale_to_8bit(array)
    elif array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating):
            raise PhotoError(f"expected a uint8 or float image array, got {array.dtype}")
        array = np.clip(np.nan_to_num(array) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array)


def read_photo_bytes(photo: str | os.PathLike | bytes | bytearray | memoryview,
                     limits: Limits | None = None) -> bytes:
    """The file bytes of a photo path or buffer, at most ``photo_bytes``.

    Raises:
        PhotoError: missing, empty, unreadable or too large.
    """
    from core.safe_read import ReadRefused, read_capped

    limits = limits or load_limits()
    if isinstance(photo, (bytes, bytearray, memoryview)):
        raw = bytes(photo)
        if len(raw) > limits.photo_bytes:
            raise PhotoError(limits.refusal(f"the photo ({len(raw):,} bytes)", "photo_bytes"))
        if not raw:
            raise PhotoError("the uploaded file is empty; upload a JPEG or PNG photo")
        return raw
    path = Path(photo)
    if not path.is_file():
        raise PhotoError(f"photo not found: {path}")
    try:
        raw = read_capped(path, limits.photo_bytes, f"the photo {path.name}", "photo_bytes", limits)
    except ReadRefused as exc:
        raise PhotoError(str(exc)) from None
    except OSError as exc:
        raise PhotoError(f"cannot read the photo {path.name}: {exc.strerror or exc}") from None
    if not raw:
        raise PhotoError(f"the photo {path.name} is an empty file")
    return raw


def decode_photo(raw: bytes, limits: Limits | None = None) -> np.ndarray:
    """Photo file bytes -> RGB uint8, opening only :data:`FORMATS` and checking the pixel count
    (``photo_pixels``) before decoding; photos over ``photo_work_pixels`` come back downscaled
    to at most that many pixels (JPEGs are decoded at a reduced scale to start with)."""
    limits = limits or load_limits()
    Image.init()  # registers every decoder named in FORMATS (idempotent)
    try:
        with Image.open(io.BytesIO(raw), formats=FORMATS) as image:
            width, height = image.size
            if width * height > limits.photo_pixels:
                raise PhotoError(limits.refusal(f"the photo ({width}x{height} pixels)",
                                                "photo_pixels", limits.photo_pixels))
            work = limits.photo_work_pixels
            if width * height > work:  # JPEG decodes at 1/2..1/8 scale: less memory and time
                scale = math.sqrt(work / (width * height))
                image.draft(None, (max(1, int(width * scale)), max(1, int(height * scale))))
            image.load()
            return fit_pixels(to_rgb8(image), work)
    except Image.DecompressionBombError:
        raise PhotoError(limits.refusal("the photo", "photo_pixels")) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        if isinstance(exc, PhotoError):
            raise
        raise PhotoError(f"the file is not a readable image; upload {FORMAT_TEXT}") from None


def fit_pixels(rgb: np.ndarray, pixels: int) -> np.ndarray:
    """``rgb`` (H, W, 3 uint8) downscaled (box filter, aspect kept) to at most ``pixels``
    pixels (``photo_work_pixels``: face detection and alignment on a 49-megapixel photo cost
    ~0.8 GB each, on 4 megapixels ~60 MB); returned as it is when already small enough."""
    height, width = rgb.shape[:2]
    if height * width <= pixels:
        return rgb
    scale = math.sqrt(pixels / (height * width))
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    small = Image.fromarray(rgb).resize(size, Image.Resampling.BOX)
    return np.ascontiguousarray(np.asarray(small, dtype=np.uint8))


def load_photo(photo: PhotoInput, limits: Limits | None = None) -> LoadedPhoto:
    """Decode a path, bytes, PIL image or array into EXIF-transposed RGB uint8.

    Paths and bytes are read within ``configs/limits.yaml`` (``photo_bytes``, ``photo_pixels``);
    arrays and PIL images handed in by code are converted as they are. This is the check the
    app's upload and the training CLI run before any model is involved.

    Raises:
        PhotoError: missing, empty, too large, not an image, or an unsupported mode.
    """
    if isinstance(photo, np.ndarray):
        return LoadedPhoto(rgb=array_to_rgb8(photo), raw_bytes=None)
    if isinstance(photo, Image.Image):
        return LoadedPhoto(rgb=to_rgb8(photo), raw_bytes=None)
    if not isinstance(photo, (bytes, bytearray, memoryview, str, os.PathLike)):
        raise PhotoError(f"unsupported photo type {type(photo).__name__}; "
                         "pass a file path, bytes, a PIL image or an RGB array")
    raw = read_photo_bytes(photo, limits)
    return LoadedPhoto(rgb=decode_photo(raw, limits), raw_bytes=raw)


__all__ = ["FORMATS", "LoadedPhoto", "PhotoError", "PhotoInput", "array_to_rgb8", "decode_photo",
           "fit_pixels", "load_photo", "read_photo_bytes", "scale_to_8bit", "to_rgb8"]
