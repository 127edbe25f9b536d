"""Whom each speech bubble points at: the speaker's face, else the speaker's place in the panel.

A panel's quoted lines (``"..."`` or ``“...”``, see :func:`pipelines.layout.quoted_lines`) each
have a speaker (``PanelSpec.speakers``, from the story parser or the panel table's Speaker
column; a panel with one character: that character). :func:`speaker_targets` turns them into
boxes in the panel image's pixels, which :func:`pipelines.layout.render_pages` uses to place one
bubble per line, in speaking order, each with a tail ending inside its box:

1. the face the face pass redrew for that character (``FaceEdit.name``);
2. else the detected face nearest to the centre of the character's region (its place, or the
   automatic layout of :mod:`pipelines.regions`), when one lies inside it;
3. else the region itself.

A line whose speaker is unknown or not drawn in the panel gets None: its bubble keeps away from
the faces, as before speakers existed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from identities.names import name_key
from pipelines.binding import BindingError, bind_text, signal_pair
from pipelines.layout import Box, face_boxes, quoted_lines
from pipelines.project import PanelSpec
from pipelines.regions import panel_regions, sentence_order


def line_speakers(spec: PanelSpec) -> list[str]:
    """The speaker of each quoted line of ``spec.text`` ("" when unknown); a panel with exactly
    one character gives that character the lines whose speaker is not given."""
    lines = quoted_lines(spec.text)
    given = list(spec.speakers) + [""] * len(lines)
    alone = spec.characters[0] if len(spec.characters) == 1 else ""
    return [given[k] or alone for k in range(len(lines))]


def character_regions(spec: PanelSpec, size: tuple[int, int]) -> dict[str, Box]:
    """name key -> the character's region in pixels of a ``size`` (w, h) image, as regional
    drawing placed them (own place, else the automatic layout in sentence order)."""
    count = len(spec.characters)
    if not count:
        return {}
    try:
        bound = bind_text(spec.text, list(spec.characters))
        order = sentence_order(bound, count, [signal_pair(k)[0] for k in range(count)])
    except BindingError:
        order = None
    width, height = size
    return {name_key(name): Box(round(x0 * width), round(y0 * height), round(x1 * width),
                                round(y1 * height))
            for name, (x0, y0, x1, y1) in zip(spec.characters,
                                              panel_regions(spec.places, count, order))}


def speaker_targets(spec: PanelSpec, size: tuple[int, int], edits: Sequence[Any] = (),
                    faces: Sequence[Any] = ()) -> list[Box | None]:
    """One target box per quoted line of ``spec.text`` (see the module docstring).

    Args:
        spec: the panel (text, characters, places, speakers).
        size: the panel image's (width, height) in pixels.
        edits: the face pass's ``FaceEdit`` s of the chosen image (``name`` and ``box``).
        faces: detected face boxes (``Box``, (x0, y0, x1, y1) or objects with ``box``).
    """
    by_face = {name_key(e.name): face_boxes([e.box])[0] for e in edits}
    detected = face_boxes(faces)
    regions = character_regions(spec, size)
    targets: list[Box | None] = []
    for speaker in line_speakers(spec):
        key = name_key(speaker)
        if not speaker or key not in regions:
            targets.append(None)
        elif key in by_face:
            targets.append(by_face[key])
        else:
            region = regions[key]
            inside = [f for f in detected if region.x0 <= f.center[0] < region.x1
                      and region.y0 <= f.center[1] < region.y1]
            cx, cy = region.center
            targets.append(min(inside, key=lambda f: (f.center[0] - cx) ** 2 + (f.center[1] - cy) ** 2)
                           if inside else region)
    return targets


__all__ = ["character_regions", "line_speakers", "speaker_targets"]
