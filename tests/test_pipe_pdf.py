"""comic.pdf (pipelines/pdf.py): paper size, pages scaled to fit, title and author in the
metadata, page PNGs embedded unchanged (checked by reading it back with pypdf)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

from pipelines.export import png_bytes
from pipelines.pdf import MARGIN_PT, PAPER_SIZES_PT, png_stream, write_pdf


def _page(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize("paper", ["A4", "Letter"])
def test_each_page_fits_its_paper_with_the_pixels_unchanged(paper):
    tall, wide = _page(768, 808, 1), _page(900, 300, 2)
    pdf = write_pdf([png_bytes(tall), wide], paper=paper, title="Grace’s day ✓",
                    author="Ada Lovelace")
    reader = PdfReader(io.BytesIO(pdf), strict=True)  # xref offsets exact, no repairs
    assert reader.metadata.title == "Grace’s day ✓" and reader.metadata.author == "Ada Lovelace"
    short, long = PAPER_SIZES_PT[paper]
    first, second = reader.pages
    assert (float(first.mediabox.width), float(first.mediabox.height)) == pytest.approx((short, long))
    # a landscape picture gets the paper turned
    assert (float(second.mediabox.width), float(second.mediabox.height)) == pytest.approx((long, short))
    for page, image in ((first, tall), (second, wide)):
        [embedded] = page.images
        assert np.array_equal(np.asarray(embedded.image.convert("RGB")), np.asarray(image))
        # scaled to fit inside the margins: the drawing matrix of the one image
        a, _b, _c, d, x, y = (float(v) for v in page.get_contents().get_data().split()[1:7])
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        assert x >= MARGIN_PT - 1e-3 and y >= MARGIN_PT - 1e-3
        assert x + a <= width - MARGIN_PT + 1e-3 and y + d <= height - MARGIN_PT + 1e-3
        assert a / d == pytest.approx(image.width / image.height, rel=1e-3)
        assert max(a, d) > 0.9 * (max(width, height) - 2 * MARGIN_PT) or \
            min(a, d) > 0.9 * (min(width, height) - 2 * MARGIN_PT)  # fills one side


def test_the_page_png_goes_in_without_recompression():
    png = png_bytes(_page(400, 500))
    stream = png_stream(png)
    assert stream is not None and (stream.width, stream.height, stream.colors) == (400, 500, 3)
    pdf = write_pdf([png])
    assert stream.data in pdf  # the IDAT bytes themselves, not a new encoding
    assert len(pdf) < len(png) + 2_000
    # PNGs PDF cannot take as they are (alpha, palette) are converted, still lossless RGB
    rgba = Image.new("RGBA", (40, 30), (10, 20, 30, 255))
    buffer = io.BytesIO()
    rgba.save(buffer, format="PNG")
    assert png_stream(buffer.getvalue()) is None
    [image] = PdfReader(io.BytesIO(write_pdf([buffer.getvalue()]))).pages[0].images
    assert image.image.convert("RGB").getpixel((5, 5)) == (10, 20, 30)


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="at least one page"):
        write_pdf([])
    with pytest.raises(ValueError, match="unknown paper size 'A3'; use one of A4, Letter"):
        write_pdf([_page(10, 10)], paper="A3")
