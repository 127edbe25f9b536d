"""Photos of every common mode become proper 8-bit RGB before face detection (faces.photos)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from configs import load_limits
from faces.face_detection import DlibFaceDetector
from faces.face_prep import FacePrepError, prepare_face
from faces.photos import PhotoError, load_photo, scale_to_8bit, to_rgb8


@pytest.fixture(scope="module")
def detector() -> DlibFaceDetector:
    return DlibFaceDetector()


def encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def gray(astronaut: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(astronaut).convert("L"))


def test_16_bit_grayscale_is_scaled_not_clipped(astronaut, detector):
    eight = gray(astronaut)
    sixteen = Image.fromarray(eight.astype(np.uint16) * 257)  # mode I;16, full 16-bit range
    data = encode(sixteen)
    with Image.open(io.BytesIO(data)) as opened:
        assert opened.mode == "I;16"
        clipped = np.asarray(opened.convert("RGB"))  # Pillow's own conversion clips at 255
        assert (clipped == 255).mean() > 0.8
    rgb = load_photo(data).rgb
    assert rgb.dtype == np.uint8 and rgb.shape == (*eight.shape, 3)
    assert np.abs(rgb[..., 0].astype(int) - eight).max() <= 1
    from_16 = prepare_face(data, detector)
    from_8 = prepare_face(encode(Image.fromarray(eight)), detector)
    assert np.abs(from_16.landmarks - from_8.landmarks).max() < 2.0


@pytest.mark.parametrize("mode, fmt", [
    ("L", "PNG"), ("CMYK", "JPEG"), ("P", "PNG"), ("RGBA", "PNG"), ("LA", "PNG"), ("I;16", "PNG"),
    ("RGB", "WEBP"), ("RGB", "BMP"), ("CMYK", "TIFF"), ("P", "GIF"), ("1", "PNG"), ("F", "TIFF"),
])
def test_every_common_mode_becomes_8_bit_rgb_with_a_face(astronaut, detector, mode, fmt):
    source = Image.fromarray(astronaut)
    if mode == "I;16":
        image = Image.fromarray(gray(astronaut).astype(np.uint16) * 257)
    elif mode == "F":
        image = Image.fromarray(gray(astronaut).astype(np.float32) / 255.0)  # floats in [0, 1]
    else:
        image = source.convert(mode)
    data = encode(image, fmt)
    rgb = load_photo(data).rgb
    assert rgb.dtype == np.uint8 and rgb.shape == (512, 512, 3) and rgb.flags["C_CONTIGUOUS"]
    reference = astronaut if mode in ("RGB", "CMYK", "P", "RGBA") else \
        np.repeat(gray(astronaut)[..., None], 3, axis=2)
    tolerance = 20 if mode == "P" else 12  # the 216-colour web palette is coarse
    if mode != "1":  # bilevel is dithered: its pixels differ, only its shape and type count
        assert np.abs(rgb.astype(float) - reference).mean() < tolerance, mode
    if (mode, fmt) in {("CMYK", "JPEG"), ("RGBA", "PNG"), ("F", "TIFF"), ("LA", "PNG")}:
        assert prepare_face(data, detector).image.shape == (512, 512, 3)


def test_transparency_is_composited_on_white_and_exif_rotation_applied():
    rgba = Image.new("RGBA", (40, 20), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 10, 20))
    rgb = load_photo(encode(rgba)).rgb
    assert tuple(rgb[5, 30]) == (255, 255, 255) and tuple(rgb[5, 5]) == (0, 0, 255)
    palette = Image.new("P", (40, 20), 1)  # index 1 is transparent
    palette.putpalette([0, 0, 255, 255, 0, 0])
    palette.info["transparency"] = 1
    assert tuple(to_rgb8(palette)[5, 30]) == (255, 255, 255)
    assert tuple(load_photo(encode(palette)).rgb[5, 30]) == (255, 255, 255)
    stored = Image.new("RGB", (40, 20), (0, 0, 0))
    exif = stored.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    assert load_photo(encode(stored, "JPEG", exif=exif)).rgb.shape == (40, 20, 3)


def test_scale_to_8bit_covers_the_ranges():
    assert scale_to_8bit(np.array([0, 65535], np.uint16)).tolist() == [0, 255]
    assert scale_to_8bit(np.array([0, 300], np.uint16)).tolist() == [0, 1]  # dark 16-bit stays dark
    assert scale_to_8bit(np.array([0.0, 0.5, 1.0], np.float32)).tolist() == [0, 128, 255]
    assert scale_to_8bit(np.array([-5, 5], np.int32)).tolist() == [0, 255]  # stretched
    assert scale_to_8bit(np.array([np.nan, np.inf], np.float32)).tolist() == [0, 0]


@pytest.mark.parametrize("data, fragment", [
    (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not a readable image"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not a readable image"),
    (b"", "empty"),
])
def test_non_images_are_one_line(data, fragment):
    with pytest.raises(PhotoError) as info:
        load_photo(data)
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, FacePrepError)  # the same error type face preparation raises


def test_too_many_pixels_is_refused_from_the_header():
    limits = load_limits()
    data = encode(Image.new("1", (8000, 8000)))  # 64 megapixels, a few KB on disk
    assert len(data) < 100_000
    with pytest.raises(PhotoError, match=r"8000x8000 pixels\) is over the limit .*photo_pixels"):
        load_photo(data)
    with pytest.raises(PhotoError, match="photo_bytes"):
        load_photo(bytes(limits.photo_bytes + 1))
