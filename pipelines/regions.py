"""Where each character of a panel stands: places, parsed and laid out (no torch).

A *place* is the region of the panel a character's identity is drawn in, as a box
``(x0, y0, x1, y1)`` in 0-1 units of the panel (x to the right, y down). The user may write it as

* ``left``, ``center`` (or ``centre``, ``middle``), ``right``: named vertical bands that overlap
  (:data:`NAMED_PLACES`);
* ``x0,y0,x1,y1``: a box, four numbers in [0, 1] with ``x0 < x1`` and ``y0 < y1``;
* ``auto`` or nothing: the automatic layout.

The automatic layout depends on the number of characters and their order in the sentence (the
first named stands leftmost): one character takes the whole frame; ``n`` take ``n`` equal
vertical bands that touch but never overlap (halves, thirds, ...; :func:`auto_places`). Soft
edges come from regional attention's feather (``generation.region_feather``), which ramps each
band in from its inner edges, so no cell is ever weighted by two automatic bands.
Places are what regional attention (:mod:`pipelines.regional`) and the face pass
(:mod:`pipelines.face_pass`) use to decide which face is whose.
"""

from __future__ import annotations

import math
from typing import Sequence

Region = tuple[float, float, float, float]

WHOLE: Region = (0.0, 0.0, 1.0, 1.0)
NAMED_PLACES: dict[str, Region] = {
    "left": (0.0, 0.0, 0.6, 1.0),
    "center": (0.25, 0.0, 0.75, 1.0),
    "right": (0.4, 0.0, 1.0, 1.0),
}
_ALIASES = {"centre": "center", "middle": "center", "": "auto", "automatic": "auto"}
AUTO_LAYOUTS: dict[int, tuple[Region, ...]] = {
    1: (WHOLE,),
    2: ((0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)),
    3: ((0.0, 0.0, 1 / 3, 1.0), (1 / 3, 0.0, 2 / 3, 1.0), (2 / 3, 0.0, 1.0, 1.0)),
}
PLACE_SEPARATOR = ";"


class PlaceError(ValueError):
    """A place that cannot be read (one-line message)."""


def parse_place(text: str) -> Region | None:
    """One place -> its box in 0-1 units, or None for ``auto`` / blank.

    Raises:
        PlaceError: not a named place and not four numbers in [0, 1] with x0 < x1, y0 < y1.
    """
    word = " ".join(str(text).split()).lower()
    word = _ALIASES.get(word, word)
    if word == "auto":
        return None
    if word in NAMED_PLACES:
        return NAMED_PLACES[word]
    parts = [p.strip() for p in word.split(",")]
    if len(parts) != 4:
        raise PlaceError(f"place '{str(text)[:30]}' is not left, center, right, auto or a box "
                         "x0,y0,x1,y1 in 0-1 units")
    try:
        x0, y0, x1, y1 = (float(p) for p in parts)
    except ValueError:
        raise PlaceError(f"place '{str(text)[:30]}': a box needs four numbers x0,y0,x1,y1") from None
    if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in (x0, y0, x1, y1)):
        raise PlaceError(f"place '{str(text)[:30]}': box numbers must lie between 0 and 1")
    if not (x0 < x1 and y0 < y1):
        raise PlaceError(f"place '{str(text)[:30]}': a box needs x0 < x1 and y0 < y1")
    return (x0, y0, x1, y1)


def normalise_place(text: str) -> str:
    """The canonical spelling of a valid place (``"Centre"`` -> ``"center"``, boxes as
    ``"0.1,0,0.5,1"``, blank -> ``"auto"``); PlaceError if invalid."""
    region = parse_place(text)
    if region is None:
        return "auto"
    word = " ".join(str(text).split()).lower()
    word = _ALIASES.get(word, word)
    return word if word in NAMED_PLACES else ",".join(f"{v:g}" for v in region)


def split_places(cell: str) -> tuple[str, ...]:
    """A panel-table cell ``"left; 0.5,0,1,1"`` -> ``("left", "0.5,0,1,1")`` (stripped, not yet
    validated: :func:`check_places` does that; trailing blank or ``auto`` entries dropped).
    Places are separated by ``;`` because boxes contain commas."""
    places = [" ".join(p.split()) for p in str(cell or "").split(PLACE_SEPARATOR)]
    while places and places[-1].lower() in ("", "auto"):
        places.pop()
    return tuple(places)


def join_places(places: Sequence[str]) -> str:
    """The inverse of :func:`split_places`: ``"left; right"`` (empty when all automatic)."""
    return f"{PLACE_SEPARATOR} ".join(places) if any(p != "auto" for p in places) else ""


def check_places(places: Sequence[str], characters: Sequence[str]) -> tuple[str, ...]:
    """Validate a panel's places against its characters; returns them canonical.

    Raises:
        PlaceError: more places than characters, or an invalid place (named by character).
    """
    if len(places) > len(characters):
        raise PlaceError(f"{len(places)} places for {len(characters)} character(s); give at most "
                         "one place per character, in the characters' order")
    out = []
    for name, place in zip(characters, places):
        if not isinstance(place, str):
            raise PlaceError(f"the place of '{name}' must be a string")
        try:
            out.append(normalise_place(place))
        except PlaceError as exc:
            raise PlaceError(f"'{name}': {exc}") from None
    return tuple(out)


def auto_places(count: int, sentence_order: Sequence[int] | None = None) -> list[Region]:
    """The automatic layout: character ``i``'s box for ``count`` characters.

    Args:
        count: characters in the panel (1 to 3 have layouts; more get equal bands, touching
            and never overlapping, like those).
        sentence_order: the characters' indices in the order they are named in the sentence
            (leftmost first); None -> listing order.
    Returns:
        one box per character, in the characters' (listing) order.
    """
    if count <= 0:
        return []
    layout = AUTO_LAYOUTS.get(count) or tuple(
        (k / count, 0.0, (k + 1) / count, 1.0) for k in range(count))
    order = list(sentence_order) if sentence_order is not None else list(range(count))
    order += [i for i in range(count) if i not in order]
    boxes: list[Region] = [WHOLE] * count
    for slot, character in enumerate(order[:count]):
        boxes[character] = layout[slot]
    return boxes


def panel_regions(places: Sequence[str], count: int,
                  sentence_order: Sequence[int] | None = None) -> list[Region]:
    """Every character's box: its own place where given, else the automatic layout's."""
    boxes = auto_places(count, sentence_order)
    for i, place in enumerate(list(places)[:count]):
        region = parse_place(place)
        if region is not None:
            boxes[i] = region
    return boxes


def sentence_order(bound_text: str, count: int, first_words: Sequence[str]) -> list[int]:
    """Character indices sorted by where each is first named in ``bound_text``.

    ``first_words[i]`` is character ``i``'s first signal word (``v1*``, ``v3*``, ...); characters
    not named keep their listing order after the named ones.
    """
    lowered = bound_text.lower()
    found = [(lowered.find(first_words[i].lower()), i) for i in range(count)]
    named = sorted((pos, i) for pos, i in found if pos >= 0)
    return [i for _, i in named] + [i for pos, i in found if pos < 0]


__all__ = ["AUTO_LAYOUTS", "NAMED_PLACES", "PLACE_SEPARATOR", "PlaceError", "Region", "WHOLE",
           "auto_places", "check_places", "join_places", "normalise_place", "panel_regions",
           "parse_place", "sentence_order", "split_places"]
