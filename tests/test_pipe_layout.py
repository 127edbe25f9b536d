"""Comic pages: layouts by panel count, captions, title, speech bubbles away from faces."""

from __future__ import annotations

import itertools
import math

import pytest
from PIL import Image

from pipelines.layout import (Box, PageStyle, bubble_box, find_font, load_font, plan_pages,
                              render_pages, row_pattern, split_dialogue, split_pages, wrap_text)

COUNTS = list(range(1, 14)) + [25]


def boxes_of(page):
    boxes = [("title", page.title)] if page.title is not None else []
    for slot in page.slots:
        boxes.append((f"image {slot.panel}", slot.image))
        if slot.caption is not None:
            boxes.append((f"caption {slot.panel}", slot.caption))
    return boxes


def test_pages_split_evenly_with_at_most_six_panels():
    assert split_pages(4) == [4] and split_pages(6) == [6]
    assert split_pages(7) == [4, 3] and split_pages(12) == [6, 6] and split_pages(13) == [5, 4, 4]
    for n in range(1, 40):
        sizes = split_pages(n)
        assert sum(sizes) == n and max(sizes) <= 6 and len(sizes) == math.ceil(n / 6)
        assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError):
        split_pages(0)


def test_row_patterns():
    assert row_pattern(4) == (2, 2) and row_pattern(6) == (3, 3)
    assert row_pattern(5) == (3, 2) and row_pattern(3) == (2, 1)
    assert sum(row_pattern(9)) == 9


@pytest.mark.parametrize("panel_size", [(64, 64), (96, 64)])
@pytest.mark.parametrize("n", COUNTS)
def test_page_geometry(n, panel_size):
    captions = [f"Ada Lovelace and Alan Turing do thing number {i} in a long sentence." for i in range(n)]
    captions[0] = "\"Look!\" Ada Lovelace said."
    pages = plan_pages(captions, panel_size, title="A Long Day")
    assert len(pages) == math.ceil(n / 6)
    assert [slot.panel for page in pages for slot in page.slots] == list(range(n))
    assert len({(p.width, p.height) for p in pages}) == 1
    assert pages[0].title is not None and all(p.title is None for p in pages[1:])
    aspect = panel_size[1] / panel_size[0]
    for page in pages:
        assert len(page.slots) <= 6
        boxes = boxes_of(page)
        for name, box in boxes:
            assert box.width > 0 and box.height > 0, name
            assert page.box.contains(box), f"{name} {box} outside page {page.width}x{page.height}"
        for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
            assert box_a.intersection(box_b) == 0, f"{a} overlaps {b}"
        for slot in page.slots:
            assert abs(slot.image.height - slot.image.width * aspect) <= 1  # never cropped
            if slot.caption is not None:
                assert slot.caption.y0 == slot.image.y1 and slot.caption.width == slot.image.width
    # dialogue moved to a bubble, the rest stays a caption
    first = pages[0].slots[0]
    assert first.speech == "Look!" and first.caption_lines == ("Ada Lovelace said.",)


def test_rows_of_different_counts_have_different_widths():
    page = plan_pages(["x"] * 5, (64, 64))[0]
    widths = [slot.image.width for slot in page.slots]
    assert widths[0] == widths[1] == widths[2] < widths[3] == widths[4]
    lone = plan_pages(["x"] * 3, (64, 64))[0].slots
    assert lone[2].image.width == lone[0].image.width  # the lone third panel keeps the column width
    assert lone[2].image.center[0] == pytest.approx(lone[0].image.x0 / 2 + lone[1].image.x1 / 2, abs=1)


def test_split_dialogue():
    assert split_dialogue("\"We need to leave now!\" Tom Hardy shouted.") == \
        ("Tom Hardy shouted.", "We need to leave now!")
    assert split_dialogue("Tom Hardy pointed at the map and said, \"To the harbor.\"") == \
        ("Tom Hardy pointed at the map and said.", "To the harbor.")
    assert split_dialogue("Ada said \u201cHello\u201d to Alan.") == ("Ada said to Alan.", "Hello")
    assert split_dialogue("\"Only speech.\"") == ("", "Only speech.")
    assert split_dialogue("Ada Lovelace's cat sleeps.") == ("Ada Lovelace's cat sleeps.", None)


def test_bubble_goes_to_the_corner_farthest_from_faces():
    image = Box(0, 0, 400, 400)
    assert bubble_box(image, (100, 50)).as_tuple() == (8, 8, 108, 58)  # no face: top-left
    face_top_left = [Box(20, 20, 150, 150)]
    box = bubble_box(image, (100, 50), face_top_left)
    assert box.intersection(face_top_left[0]) == 0 and box.x0 > 200 and box.y0 > 200
    faces_left = [Box(0, 0, 150, 400)]
    box = bubble_box(image, (100, 50), faces_left)
    assert box.x0 > 200 and box.intersection(faces_left[0]) == 0
    everywhere = [Box(0, 0, 400, 380)]
    box = bubble_box(image, (100, 50), everywhere)
    assert box.y1 > 380  # least overlap: the bottom strip


def test_rendered_pages_show_panels_captions_title_and_bubble():
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200)]
    images = [Image.new("RGB", (64, 64), c) for c in colours]
    captions = ["Ada Lovelace walks.", "\"Hello!\" Alan Turing says.", "Rain.", "Night.", "Dawn."]
    faces = [[], [(0, 0, 30, 30)], [], [], []]  # a face top-left in panel 2
    style = PageStyle(page_width=800)
    pages = render_pages(images, captions, title="Title", faces=faces, style=style)
    layout = plan_pages(captions, (64, 64), "Title", style)
    assert len(pages) == 1 and pages[0].size == (layout[0].width, layout[0].height)
    page = pages[0]
    for slot, colour in zip(layout[0].slots, colours):
        cx, cy = (int(v) for v in slot.image.center)
        assert page.getpixel((cx, cy)) == colour
        if slot.caption is not None:
            inside = page.crop(slot.caption.as_tuple()).getcolors(1 << 16)
            assert any(c == style.caption_fill for _, c in inside)
            assert any(c == style.ink or sum(c) < 200 for _, c in inside)  # text was drawn
    bubble_slot = layout[0].slots[1]
    img = bubble_slot.image
    # the face is top-left, so the bubble (white) sits elsewhere, the top-left keeps the panel colour
    assert page.getpixel((img.x0 + 20, img.y0 + 20)) == colours[1]
    corners = [(img.x1 - 30, img.y0 + 20), (img.x0 + 30, img.y1 - 20), (img.x1 - 30, img.y1 - 20)]
    assert any(page.getpixel(p) == style.bubble_fill for p in corners)
    title = page.crop(layout[0].title.as_tuple())
    assert title.getextrema() != ((255, 255), (255, 255), (255, 255))


def test_fonts_and_wrapping():
    font = load_font(20)
    assert font.getlength("abc") > 0
    assert find_font() is None or find_font().suffix == ".ttf"
    lines = wrap_text("one two three four five six seven", font, 80)
    assert len(lines) > 1 and all(font.getlength(line) <= 80 for line in lines)
    long_word = wrap_text("x" * 200, font, 50)
    assert len(long_word) > 1 and all(font.getlength(line) <= 50 for line in long_word)
