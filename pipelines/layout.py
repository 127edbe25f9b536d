"""Comic pages: panel layouts by count, captions with real names, a title, speech bubbles.

Planning (:func:`plan_pages`) is pure geometry, so it is tested without drawing; rendering
(:func:`render_pages`) paints a plan with Pillow.

* **Pages.** At most ``max_per_page`` (6) panels per page; a long story is split into pages of
  near-equal size, larger first (7 -> 4 + 3, 13 -> 5 + 4 + 4).
* **Rows by count.** 1: one panel; 2: side by side; 3: two, then one centred; 4: 2 x 2;
  5: three, then two wider; 6: 3 x 2. A row of k panels spans the content width, so rows of
  different counts have panels of different widths; a lone panel on a multi-row page keeps the
  width of a two-panel row. Panels keep their aspect ratio (never cropped).
* **Captions.** Each panel's sentence (real names; the layout never sees signal words) below its
  image. A line in double quotes ("..." or “...”) becomes a speech bubble inside the panel and
  is left out of the caption.
* **Bubbles.** When the panel's speakers are known (``targets``, see :mod:`pipelines.speech`),
  one bubble per quoted line, in speaking order (top to bottom; a bubble left of the one before
  it sits lower), each above its speaker and beside the speaker's face rather than on it, with
  a tail that ends inside the speaker's box (:func:`place_bubbles`, :func:`tail_tip`).
  Otherwise all quoted lines share one bubble in the panel corner that overlaps detected faces
  least (then farthest from them), with a tail pointing at the nearest face; top-left when no
  face is known.
* All pages of a comic share one size (shorter pages are padded at the bottom).
"""

from __future__ import annotations

import importlib.util
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from PIL import Image, ImageDraw, ImageFont, ImageOps

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu",
             "/usr/share/fonts/TTF", "/Library/Fonts", "C:/Windows/Fonts")
QUOTE = re.compile(r"\"([^\"]+)\"|\u201c([^\u201d]+)\u201d")
ROW_PATTERNS = {1: (1,), 2: (2,), 3: (2, 1), 4: (2, 2), 5: (3, 2), 6: (3, 3)}

Font = Any  # ImageFont.FreeTypeFont or the scalable default font


# ----------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels, ``x1``/``y1`` exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    def intersection(self, other: "Box") -> int:
        """Overlapping area with ``other`` in square pixels (0 when they only touch)."""
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        return max(0, w) * max(0, h)

    def contains(self, other: "Box") -> bool:
        return (self.x0 <= other.x0 and self.y0 <= other.y0 and other.x1 <= self.x1
                and other.y1 <= self.y1)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return self.x0, self.y0, self.x1, self.y1


@dataclass(frozen=True)
class PageStyle:
    """Page geometry and look, in pixels (defaults suit 1024 px SDXL panels and tiny ones).

    Attributes:
        page_width: every page's width.
        margin: outer margin; gutter: space between panels and rows.
        max_per_page: most panels on one page.
        caption_size / title_size: font sizes; caption_padding: space around caption text.
        border: panel frame width.
    """

    page_width: int = 1600
    margin: int = 48
    gutter: int = 28
    max_per_page: int = 6
    caption_size: int = 28
    title_size: int = 60
    caption_padding: int = 10
    border: int = 4
    background: tuple[int, int, int] = (255, 255, 255)
    ink: tuple[int, int, int] = (20, 20, 20)
    caption_fill: tuple[int, int, int] = (255, 247, 214)
    bubble_fill: tuple[int, int, int] = (255, 255, 255)


@dataclass(frozen=True)
class SlotLayout:
    """Where one panel goes on its page.

    Attributes:
        panel: the panel's index in the comic (0-based).
        image: the panel picture's box.
        caption: the caption box below it, or None when there is no caption text.
        caption_lines: the caption wrapped to the box width.
        speech: the quoted line shown in a bubble, or None.
        lines: each quoted line on its own (one bubble each when speakers are known).
    """

    panel: int
    image: Box
    caption: Box | None
    caption_lines: tuple[str, ...] = ()
    speech: str | None = None
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class PageLayout:
    """One page: its size, the title box (first page only) and the panel slots."""

    number: int
    width: int
    height: int
    title: Box | None
    title_lines: tuple[str, ...]
    slots: tuple[SlotLayout, ...]

    @property
    def box(self) -> Box:
        return Box(0, 0, self.width, self.height)


# ----------------------------------------------------------------------------- fonts and text


def find_font(bold: bool = False) -> Path | None:
    """A DejaVu Sans TrueType file from the system or matplotlib's data folder, if any."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    folders = [Path(d) for d in FONT_DIRS]
    spec = importlib.util.find_spec("matplotlib")  # located, never imported
    if spec is not None and spec.submodule_search_locations:
        folders += [Path(p) / "mpl-data" / "fonts" / "ttf" for p in spec.submodule_search_locations]
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    return None


@lru_cache(maxsize=32)
def load_font(size: int, bold: bool = False) -> Font:
    """A scalable font of ``size`` pixels: DejaVu Sans when found, else Pillow's default."""
    path = find_font(bold)
    if path is not None:
        try:
            return ImageFont.truetype(str(path), size=size)
        except OSError:
            pass
    return ImageFont.load_default(size=size)


def line_height(font: Font) -> int:
    """Height of one text line in pixels (ascent + descent, with a little leading)."""
    try:
        ascent, descent = font.getmetrics()
        return int(math.ceil((ascent + descent) * 1.15))
    except AttributeError:  # pragma: no cover - bitmap fallback
        return int(font.getbbox("Ag")[3]) + 2


def wrap_text(text: str, font: Font, width: int) -> list[str]:
    """Greedy word wrap to ``width`` pixels; words longer than a line are split."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}".strip()
            if font.getlength(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while font.getlength(word) > width and len(word) > 1:
                cut = max(1, max(i for i in range(1, len(word) + 1)
                                 if font.getlength(word[:i]) <= width or i == 1))
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        if line:
            lines.append(line)
    return lines


def quoted_lines(text: str) -> list[str]:
    """Each double-quoted line of ``text`` ("..." or “...”), stripped, in order."""
    return [q.strip() for q in (a or b for a, b in QUOTE.findall(text)) if q.strip()]


def split_dialogue(text: str) -> tuple[str, str | None]:
    """(caption, speech): the quoted line(s) of ``text`` and the sentence without them.

    ``"We must go!" Tom Hardy shouted.`` -> ("Tom Hardy shouted.", "We must go!"). Text with no
    double-quoted part is returned unchanged with speech None.
    """
    quotes = [a or b for a, b in QUOTE.findall(text)]
    quotes = [q.strip() for q in quotes if q.strip()]
    if not quotes:
        return text.strip(), None
    rest = QUOTE.sub(" ", text)
    rest = re.sub(r"\s+", " ", rest).strip()
    rest = re.sub(r"\s+([,.;:!?])", r"\1", rest)
    rest = rest.lstrip(",;: ").rstrip(",;: ")
    if rest and rest[-1] not in ".!?":
        rest += "."
    if rest:
        rest = rest[0].upper() + rest[1:]
    if not re.search(r"\w", rest):
        rest = ""
    return rest, " ".join(quotes)


# ----------------------------------------------------------------------------- planning


def split_pages(n_panels: int, max_per_page: int = 6) -> list[int]:
    """Panels per page: ``ceil(n / max)`` pages of near-equal size, larger pages first."""
    if n_panels < 1:
        raise ValueError("a comic needs at least one panel")
    if max_per_page < 1:
        raise ValueError("max_per_page must be at least 1")
    pages = math.ceil(n_panels / max_per_page)
    base, extra = divmod(n_panels, pages)
    return [base + 1 if i < extra else base for i in range(pages)]


def row_pattern(count: int) -> tuple[int, ...]:
    """Panels per row for a page of ``count`` panels (see the module docstring)."""
    if count in ROW_PATTERNS:
        return ROW_PATTERNS[count]
    rows = [3] * (count // 3)  # beyond 6 (a custom max_per_page): rows of three, remainder last
    if count % 3:
        rows.append(count % 3)
    return tuple(rows)


def plan_pages(captions: Sequence[str], panel_size: tuple[int, int], title: str = "",
               style: PageStyle = PageStyle()) -> list[PageLayout]:
    """Lay out ``len(captions)`` panels of ``panel_size`` (width, height) pixels onto pages.

    ``captions`` are the panels' sentences (with real names); quoted dialogue is moved to a
    speech bubble. Returns one :class:`PageLayout` per page, all of the same size.
    """
    n = len(captions)
    width, height = panel_size
    if width <= 0 or height <= 0:
        raise ValueError(f"panel size must be positive, got {panel_size}")
    aspect = height / width
    content = style.page_width - 2 * style.margin
    if content < 3 * 16 + 2 * style.gutter:
        raise ValueError(f"page_width {style.page_width} is too small for the margins")
    caption_font = load_font(style.caption_size)
    caption_line = line_height(caption_font)
    title_font = load_font(style.title_size, bold=True)
    title_lines = tuple(wrap_text(title.strip(), title_font, content)) if title.strip() else ()
    title_height = len(title_lines) * line_height(title_font)

    plans: list[tuple[int, Box | None, tuple[str, ...], list[SlotLayout], int]] = []
    index = 0
    for number, count in enumerate(split_pages(n, style.max_per_page), start=1):
        y = style.margin
        title_box = None
        lines_here: tuple[str, ...] = ()
        if number == 1 and title_lines:
            title_box = Box(style.margin, y, style.margin + content, y + title_height)
            lines_here = title_lines
            y = title_box.y1 + style.gutter
        pattern = row_pattern(count)
        slots: list[SlotLayout] = []
        for row_i, k in enumerate(pattern):
            columns = 2 if (k == 1 and len(pattern) > 1) else k
            cell = (content - (columns - 1) * style.gutter) // columns
            image_h = max(1, round(cell * aspect))
            row_width = k * cell + (k - 1) * style.gutter
            x = style.margin + (content - row_width) // 2
            row_slots = []
            for _ in range(k):
                text, speech = split_dialogue(captions[index])
                lines = tuple(wrap_text(text, caption_font, cell - 2 * style.caption_padding)) \
                    if text else ()
                image = Box(x, y, x + cell, y + image_h)
                caption = None
                if lines:
                    caption = Box(x, image.y1, x + cell,
                                  image.y1 + len(lines) * caption_line + 2 * style.caption_padding)
                row_slots.append(SlotLayout(panel=index, image=image, caption=caption,
                                            caption_lines=lines, speech=speech,
                                            lines=tuple(quoted_lines(captions[index]))))
                index += 1
                x += cell + style.gutter
            slots.extend(row_slots)
            bottom = max((s.caption or s.image).y1 for s in row_slots)
            y = bottom + (style.gutter if row_i < len(pattern) - 1 else 0)
        plans.append((number, title_box, lines_here, slots, y + style.margin))
    page_height = max(p[4] for p in plans)
    return [PageLayout(number=number, width=style.page_width, height=page_height, title=title_box,
                       title_lines=lines, slots=tuple(slots))
            for number, title_box, lines, slots, _ in plans]


def _face_box(face: Any) -> tuple[float, float, float, float]:
    box = getattr(face, "box", face)
    if isinstance(box, Box):
        box = box.as_tuple()
    x0, y0, x1, y1 = (float(v) for v in box)
    return x0, y0, x1, y1


def bubble_box(image: Box, size: tuple[int, int], faces: Sequence[Box] = (),
               inset: int = 8) -> Box:
    """A ``size`` (w, h) bubble in the corner of ``image`` farthest from ``faces``.

    Corners are ranked by total overlap with the face boxes (least first), then by distance from
    the bubble centre to the nearest face centre (farthest first); ties keep reading order
    (top-left, top-right, bottom-left, bottom-right).
    """
    w = min(size[0], image.width - 2 * inset)
    h = min(size[1], image.height - 2 * inset)
    corners = [Box(image.x0 + inset, image.y0 + inset, image.x0 + inset + w, image.y0 + inset + h),
               Box(image.x1 - inset - w, image.y0 + inset, image.x1 - inset, image.y0 + inset + h),
               Box(image.x0 + inset, image.y1 - inset - h, image.x0 + inset + w, image.y1 - inset),
               Box(image.x1 - inset - w, image.y1 - inset - h, image.x1 - inset, image.y1 - inset)]
    if not faces:
        return corners[0]

    def rank(item: tuple[int, Box]) -> tuple[float, float, int]:
        order, box = item
        overlap = sum(box.intersection(face) for face in faces)
        cx, cy = box.center
        nearest = min(math.hypot(cx - f.center[0], cy - f.center[1]) for f in faces)
        return overlap, -nearest, order

    return min(enumerate(corners), key=rank)[1]


def tail_tip(bubble: Box, target: Box, inset: float = 0.15) -> tuple[float, float]:
    """Where a bubble's tail ends: the point of ``target`` nearest the bubble's centre, moved
    ``inset`` of the target's size inside it (so it ends inside the speaker's box, at its edge)."""
    cx, cy = bubble.center
    dx, dy = target.width * inset, target.height * inset
    x = min(max(cx, target.x0 + dx), target.x1 - 1 - dx)
    y = min(max(cy, target.y0 + dy), target.y1 - 1 - dy)
    return x, y


def place_bubbles(image: Box, sizes: Sequence[tuple[int, int]], targets: Sequence[Box | None],
                  faces: Sequence[Box] = (), inset: int = 8, gap: int = 6) -> list[Box]:
    """Boxes for bubbles of ``sizes`` (w, h), in speaking order, inside ``image``.

    Each bubble is centred above its target (a speaker's face or place; None: the panel's
    centre) and stacked below the earlier bubbles it would overlap; one left of the bubble
    before it is put at least half that bubble lower, so reading order is speaking order.
    A bubble that would cover its own speaker's box moves beside it when there is room.
    """
    placed: list[Box] = []
    for (w, h), target in zip(sizes, targets):
        w = min(w, image.width - 2 * inset)
        h = min(h, image.height - 2 * inset)
        tx = target.center[0] if target is not None else image.center[0]
        x0 = round(min(max(tx - w / 2, image.x0 + inset), image.x1 - inset - w))
        if target is not None and Box(x0, image.y0 + inset, x0 + w, image.y0 + inset + h)                 .intersection(target) > 0:
            left, right = target.x0 - gap - w, target.x1 + gap
            room = [x for x in (left, right) if image.x0 + inset <= x <= image.x1 - inset - w]
            if room:
                x0 = min(room, key=lambda x: abs(x + w / 2 - tx))
        y0 = image.y0 + inset
        for earlier in placed:
            if earlier.x0 < x0 + w and x0 < earlier.x1:
                y0 = max(y0, earlier.y1 + gap)
        if placed and x0 < placed[-1].x0:
            y0 = max(y0, placed[-1].y0 + placed[-1].height // 2 + gap)
        y0 = min(y0, image.y1 - inset - h)
        placed.append(Box(x0, y0, x0 + w, y0 + h))
    return placed


def scale_faces(faces: Sequence[Any], source: tuple[int, int], target: Box) -> list[Box]:
    """Face boxes in a ``source`` (w, h) image -> boxes in ``target`` page pixels.

    ``faces`` are (x0, y0, x1, y1) tuples or objects with a ``box`` (``DetectedFace``).
    """
    sx, sy = target.width / source[0], target.height / source[1]
    out = []
    for face in faces:
        x0, y0, x1, y1 = _face_box(face)
        out.append(Box(target.x0 + round(x0 * sx), target.y0 + round(y0 * sy),
                       target.x0 + round(x1 * sx), target.y0 + round(y1 * sy)))
    return out


# ----------------------------------------------------------------------------- rendering


def _fit_text(speech: str, image: Box, share: float, style: PageStyle, width: float = 0.6
              ) -> tuple[Font, int, list[str], int, int]:
    """(font, padding, wrapped lines, text width, text height) for ``speech`` in a bubble at
    most ``width`` of the panel wide and ``share`` of it high (the font shrinks to fit)."""
    size = max(10, min(style.caption_size, image.width // 10))
    while True:
        font = load_font(size)
        pad = max(4, size // 2)
        lines = wrap_text(speech, font, max(8, int(image.width * width) - 2 * pad))
        text_w = max(int(font.getlength(line)) for line in lines)
        text_h = len(lines) * line_height(font)
        if text_h + 2 * pad <= image.height * share or size <= 8:
            return font, pad, lines, text_w, text_h
        size -= 2


def _draw_bubbles(draw: ImageDraw.ImageDraw, image: Box, speeches: Sequence[str],
                  targets: Sequence[Box | None], faces: list[Box], style: PageStyle) -> list[Box]:
    """One bubble per quoted line, in speaking order, tails ending inside their targets."""
    share = 0.45 / max(1, len(speeches)) ** 0.5
    fitted = [_fit_text(s, image, share, style, 0.6 if len(speeches) == 1 else 0.45)
              for s in speeches]
    boxes = place_bubbles(image, [(w + 2 * pad, h + 2 * pad) for _f, pad, _l, w, h in fitted],
                          targets, faces)
    for box, target, (font, pad, lines, _w, _h) in zip(boxes, targets, fitted):
        if target is not None:
            tip = tail_tip(box, target)
        elif faces:
            tip = min((f.center for f in faces),
                      key=lambda c: math.hypot(c[0] - box.center[0], c[1] - box.center[1]))
        else:
            tip = image.center
        _paint_bubble(draw, image, box, lines, font, pad, tip, style, clamp=target is None)
    return boxes


def _draw_bubble(draw: ImageDraw.ImageDraw, image: Box, speech: str, faces: list[Box],
                 style: PageStyle) -> Box:
    font, pad, lines, text_w, text_h = _fit_text(speech, image, 0.45, style)
    box = bubble_box(image, (text_w + 2 * pad, text_h + 2 * pad), faces)
    cx, cy = box.center
    if faces:
        target = min((f.center for f in faces), key=lambda c: math.hypot(c[0] - cx, c[1] - cy))
    else:
        target = image.center
    _paint_bubble(draw, image, box, lines, font, pad, target, style, clamp=True)
    return box


def _paint_bubble(draw: ImageDraw.ImageDraw, image: Box, box: Box, lines: Sequence[str],
                  font: Font, pad: int, target: tuple[float, float], style: PageStyle,
                  clamp: bool) -> None:
    """A rounded bubble with its text and a tail towards ``target``: ending there, or (with
    ``clamp``) a short tail that stops well before it."""
    cx, cy = box.center
    dx, dy = target[0] - cx, target[1] - cy
    length = math.hypot(dx, dy) or 1.0
    ux, uy = dx / length, dy / length
    reach = min(length * 0.7, max(box.width, box.height) / 2 + max(8.0, box.height * 0.6)) \
        if clamp else length
    tip = (min(max(cx + ux * reach, image.x0 + 2), image.x1 - 2),
           min(max(cy + uy * reach, image.y0 + 2), image.y1 - 2))
    base = max(3.0, min(box.width, box.height) / 5)
    draw.polygon([(cx - uy * base, cy + ux * base), (cx + uy * base, cy - ux * base), tip],
                 fill=style.bubble_fill, outline=style.ink)
    radius = max(4, min(box.width, box.height) // 3)
    draw.rounded_rectangle(box.as_tuple(), radius=radius, fill=style.bubble_fill, outline=style.ink,
                           width=max(1, style.border // 2))
    y = box.y0 + pad
    for line in lines:
        draw.text((box.x0 + pad, y), line, font=font, fill=style.ink)
        y += line_height(font)


def render_page(layout: PageLayout, images: Sequence[Image.Image],
                faces: Sequence[Sequence[Any]] | None = None,
                style: PageStyle = PageStyle(),
                targets: Sequence[Sequence[Box | None]] | None = None) -> Image.Image:
    """Paint one planned page. ``images``, ``faces`` and ``targets`` are indexed by panel index
    (``targets``: per quoted line, the speaker's box in that image's pixels, or None)."""
    page = Image.new("RGB", (layout.width, layout.height), style.background)
    draw = ImageDraw.Draw(page)
    if layout.title is not None:
        font = load_font(style.title_size, bold=True)
        y = layout.title.y0
        for line in layout.title_lines:
            x = layout.title.x0 + (layout.title.width - font.getlength(line)) / 2
            draw.text((x, y), line, font=font, fill=style.ink)
            y += line_height(font)
    caption_font = load_font(style.caption_size)
    for slot in layout.slots:
        source = images[slot.panel].convert("RGB")
        picture = ImageOps.fit(source, (slot.image.width, slot.image.height), Image.Resampling.LANCZOS)
        page.paste(picture, (slot.image.x0, slot.image.y0))
        if slot.speech:
            panel_faces = scale_faces(faces[slot.panel], source.size, slot.image) \
                if faces is not None and slot.panel < len(faces) and faces[slot.panel] else []
            wanted = list(targets[slot.panel]) if targets is not None and \
                slot.panel < len(targets) else []
            if len(wanted) == len(slot.lines) and any(t is not None for t in wanted):
                scaled = [scale_faces([t], source.size, slot.image)[0] if t is not None else None
                          for t in wanted]
                _draw_bubbles(draw, slot.image, slot.lines, scaled, panel_faces, style)
            else:
                _draw_bubble(draw, slot.image, slot.speech, panel_faces, style)
        draw.rectangle(slot.image.as_tuple(), outline=style.ink, width=style.border)
        if slot.caption is not None:
            draw.rectangle(slot.caption.as_tuple(), fill=style.caption_fill, outline=style.ink,
                           width=max(1, style.border // 2))
            y = slot.caption.y0 + style.caption_padding
            for line in slot.caption_lines:
                draw.text((slot.caption.x0 + style.caption_padding, y), line, font=caption_font,
                          fill=style.ink)
                y += line_height(caption_font)
    return page


def render_pages(images: Sequence[Image.Image], captions: Sequence[str], title: str = "",
                 faces: Sequence[Sequence[Any]] | None = None,
                 style: PageStyle = PageStyle(),
                 targets: Sequence[Sequence[Box | None]] | None = None) -> list[Image.Image]:
    """Plan and paint every page of a comic.

    Args:
        images: one chosen image per panel (all the same size).
        captions: each panel's sentence, with real names.
        title: shown on the first page ("" for none).
        faces: per panel, face boxes (x0, y0, x1, y1) in that image's pixels, or
            ``DetectedFace`` objects (``components.face_detector.detect(np.asarray(img))``).
        targets: per panel, one box per quoted line (the speaker's face or place, in that
            image's pixels; None: unknown), from :func:`pipelines.speech.speaker_targets`;
            None: one bubble per panel, away from the faces.
    Returns:
        RGB pages, all ``style.page_width`` wide and of one height.
    """
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    if not images:
        raise ValueError("a comic needs at least one panel")
    layouts = plan_pages(captions, images[0].size, title, style)
    return [render_page(layout, images, faces, style, targets) for layout in layouts]


def detect_faces(detector: Any, images: Sequence[Image.Image]) -> list[list[Box]]:
    """Face boxes per image with a ``FaceDetector`` (``detect(rgb_uint8) -> [DetectedFace]``)."""
    import numpy as np

    return [face_boxes(detector.detect(np.asarray(image.convert("RGB")))) for image in images]


def face_boxes(faces: Sequence[Any]) -> list[Box]:
    """Whole-pixel :class:`Box` es of detected faces (objects with ``.box``) or (x0, y0, x1, y1)."""
    return [Box(*(int(round(v)) for v in _face_box(f))) for f in faces]


__all__ = ["Box", "PageLayout", "PageStyle", "SlotLayout", "bubble_box", "detect_faces",
           "place_bubbles", "quoted_lines", "tail_tip",
           "face_boxes", "find_font", "load_font", "plan_pages", "render_page", "render_pages", "row_pattern",
           "scale_faces", "split_dialogue", "split_pages", "wrap_text"]
