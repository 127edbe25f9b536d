"""Decoding pictures the program did not write (the panels and pages inside a saved comic).

:func:`decode_picture` opens the bytes lazily (Pillow reads only the header), checks the picture's
width x height against ``picture_pixels`` and against what is left of a per-comic
:class:`PixelBudget` (``saved_pixels``) *before* any pixel is decoded, and only then decodes it.
A 1-bit 9000 x 9000 PNG (a 1.2 MB file that decodes to 243 MB as RGB) is refused from its 33-byte
header. The bytes themselves come from :func:`core.safe_read.read_member`, so their size is
bounded by ``picture_bytes`` and the zip's ``zip_read_bytes`` budget.

Every refusal is a :class:`core.safe_read.ReadRefused` with one line naming the picture and the
limit.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from configs import Limits
from core.safe_read import ReadRefused

#: The only formats a saved comic holds (pipelines.export writes PNG).
PICTURE_FORMATS = ("PNG",)


@dataclass
class PixelBudget:
    """Pixels (width x height) still allowed from one saved comic (starts at ``saved_pixels``)."""

    left: int


def decode_picture(data: bytes, what: str, limits: Limits,
                   budget: PixelBudget | None = None) -> Image.Image:
    """RGB picture from PNG ``data``, its size checked from the header before decoding.

    Args:
        data: the file bytes (already bounded by the caller's byte limits).
        what: how a refusal names the picture (``"comic.zip:panels/panel_01.png"``).
        budget: pixels left for the whole comic; decreased by this picture's pixels.
    Returns:
        The decoded picture in mode ``RGB`` (``H x W x 3`` bytes in memory).
    Raises:
        ReadRefused: not a PNG, damaged, over ``picture_pixels`` or over the budget.
    """
    Image.init()  # registers the PNG decoder named in PICTURE_FORMATS (idempotent)
    try:
        with Image.open(io.BytesIO(data), formats=PICTURE_FORMATS) as image:
            width, height = image.size
            pixels = width * height
            if pixels > limits.picture_pixels:
                raise ReadRefused(limits.refusal(f"{what} ({width}x{height} pixels)",
                                                 "picture_pixels"))
            if budget is not None and pixels > budget.left:
                raise ReadRefused(limits.refusal(f"{what}: the comic's pictures together",
                                                 "saved_pixels"))
            image.load()
            picture = image.convert("RGB")
    except ReadRefused:
        raise
    except Image.DecompressionBombError:
        raise ReadRefused(limits.refusal(what, "picture_pixels")) from None
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise many types on bad data
        raise ReadRefused(f"{what}: not a readable PNG picture ({type(exc).__name__})") from None
    if budget is not None:
        budget.left -= pixels
    return picture


__all__ = ["PICTURE_FORMATS", "PixelBudget", "decode_picture"]
