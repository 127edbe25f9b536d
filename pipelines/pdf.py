"""The comic's PDF, written directly: one paper-sized page per comic page, the PNG embedded as is.

Each comic page becomes one PDF page of the chosen paper (A4: 595.28 × 841.89 pt, Letter:
612 × 792 pt; turned landscape for a landscape picture), the picture scaled to fit inside a
:data:`MARGIN_PT` margin and centred, its aspect kept. The page's PNG data (an 8-bit RGB or
grey, non-interlaced PNG, which is what :func:`pipelines.export.png_bytes` writes) goes into
the PDF unchanged: PDF's ``FlateDecode`` filter with the PNG predictors reads the PNG's
``IDAT`` stream as it is, so nothing is decoded or compressed again and no JPEG loss is added.
Any other PNG (palette, alpha, 16-bit, interlaced) is converted to 8-bit RGB first.

The document information holds the title, the author, the creator and the creation date
(UTF-16 text strings, so any title is kept exactly).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from PIL import Image

#: Paper sizes in PDF points (1/72 inch), portrait (width, height).
PAPER_SIZES_PT: dict[str, tuple[float, float]] = {"A4": (595.28, 841.89), "Letter": (612.0, 792.0)}
#: White border around the picture on each side (points; 18 pt = 1/4 inch).
MARGIN_PT = 18.0
CREATOR = "Comic Identity"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class PngStream:
    """A PNG's pixel data as PDF can embed it: ``data`` is the concatenated ``IDAT`` zlib stream
    (filtered scanlines), ``colors`` 3 (RGB) or 1 (grey), 8 bits per component."""

    width: int
    height: int
    colors: int
    data: bytes


def png_stream(png: bytes) -> PngStream | None:
    """The embeddable stream of ``png``, or None when this PNG cannot go in unchanged (palette,
    alpha, not 8-bit, interlaced, or not a PNG at all)."""
    if not png.startswith(_PNG_SIGNATURE):
        return None
    pos, header, idat = len(_PNG_SIGNATURE), None, []
    while pos + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body[:13])
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None or not idat:
        return None
    width, height, depth, color_type, _compression, _filter, interlace = header
    if depth != 8 or interlace != 0 or color_type not in (0, 2):
        return None
    return PngStream(width, height, 3 if color_type == 2 else 1, b"".join(idat))


def _embeddable(page: Image.Image | bytes) -> PngStream:
    """The page as an embeddable PNG stream (converted to 8-bit RGB PNG only when needed)."""
    if isinstance(page, (bytes, bytearray)):
        stream = png_stream(bytes(page))
        if stream is not None:
            return stream
        page = Image.open(io.BytesIO(page))
    buffer = io.BytesIO()
    page.convert("RGB").save(buffer, format="PNG")
    stream = png_stream(buffer.getvalue())
    assert stream is not None  # Pillow writes 8-bit RGB PNGs non-interlaced
    return stream


def _text(value: str) -> bytes:
    """A PDF text string: UTF-16BE with its byte order mark, in hex (any character is safe)."""
    return b"<" + ("\ufeff" + value).encode("utf-16-be").hex().upper().encode() + b">"


def fit(image_size: tuple[int, int], paper: str) -> tuple[float, float, float, float, float, float]:
    """(page width, page height, x, y, drawn width, drawn height) in points: the paper turned to
    the picture's orientation, the picture scaled to fit inside the margins and centred."""
    if paper not in PAPER_SIZES_PT:
        raise ValueError(f"unknown paper size {paper!r}; use one of {', '.join(PAPER_SIZES_PT)}")
    short, long = PAPER_SIZES_PT[paper]
    width, height = image_size
    page_w, page_h = (long, short) if width > height else (short, long)
    scale = min((page_w - 2 * MARGIN_PT) / width, (page_h - 2 * MARGIN_PT) / height)
    drawn_w, drawn_h = width * scale, height * scale
    return page_w, page_h, (page_w - drawn_w) / 2, (page_h - drawn_h) / 2, drawn_w, drawn_h


def write_pdf(pages: Sequence[Image.Image | bytes], paper: str = "A4", title: str = "",
              author: str = "", created: datetime | None = None) -> bytes:
    """A PDF with one ``paper`` page per comic page (PIL images or PNG bytes; PNG bytes are
    embedded without decoding), with ``title`` and ``author`` in its document information.

    Raises:
        ValueError: no pages, or an unknown paper size.
    """
    if not pages:
        raise ValueError("a PDF needs at least one page")
    if paper not in PAPER_SIZES_PT:
        raise ValueError(f"unknown paper size {paper!r}; use one of {', '.join(PAPER_SIZES_PT)}")
    objects: list[bytes] = []  # object n is objects[n - 1]

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog, tree = add(b""), add(b"")  # filled in once the pages are known
    when = (created or datetime.now(UTC)).strftime("D:%Y%m%d%H%M%SZ")
    info = add(b"<< /Title " + _text(title) + b" /Author " + _text(author) + b" /Creator "
               + _text(CREATOR) + b" /Producer " + _text(CREATOR) + b" /CreationDate "
               + _text(when) + b" >>")
    kids = []
    for page in pages:
        stream = _embeddable(page)
        page_w, page_h, x, y, w, h = fit((stream.width, stream.height), paper)
        space = b"/DeviceRGB" if stream.colors == 3 else b"/DeviceGray"
        image = add(b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace %s "
                    b"/BitsPerComponent 8 /Filter /FlateDecode /DecodeParms << /Predictor 15 "
                    b"/Colors %d /BitsPerComponent 8 /Columns %d >> /Length %d >>\nstream\n"
                    % (stream.width, stream.height, space, stream.colors, stream.width,
                       len(stream.data)) + stream.data + b"\nendstream")
        drawing = b"q %.3f 0 0 %.3f %.3f %.3f cm /Im0 Do Q" % (w, h, x, y)
        content = add(b"<< /Length %d >>\nstream\n" % len(drawing) + drawing + b"\nendstream")
        kids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %.2f %.2f] /Resources "
                        b"<< /XObject << /Im0 %d 0 R >> >> /Contents %d 0 R >>"
                        % (tree, page_w, page_h, image, content)))
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % tree
    objects[tree - 1] = (b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % k for k in kids)
                         + b"] /Count %d >>" % len(kids))
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, catalog, info, xref))
    return out.getvalue()


__all__ = ["CREATOR", "MARGIN_PT", "PAPER_SIZES_PT", "PngStream", "fit", "png_stream", "write_pdf"]
