"""The editable panel list of the app: rows of (Text, Characters, Seed, Place, Speaker) <-> :class:`PanelSpec`.

The story parser's panels appear as a table the user edits: one row per panel with the sentence,
the characters as comma-separated full names, an optional seed (blank: the comic's seed plus
the row's index) and an optional place per character, in the characters' order, separated by
``;`` (``left; right``, ``center``, ``0,0,0.5,1``; blank: the automatic layout, see
:mod:`pipelines.regions`) and who says each quoted line of the sentence, in order, separated
by ``;`` (``Ada Lovelace; Alan Turing``; blank entries: unknown, the bubble then avoids the
faces; see :mod:`pipelines.speech`). Rows of three or four cells (before places and speakers
existed) still read. These helpers convert between the table and :class:`~pipelines.project.PanelSpec`
and implement the row controls (add, remove, move up, move down) with 1-based row numbers, as
the table shows them. Blank rows are ignored when building panels.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from configs import Limits, load_limits
from pipelines.project import GenerationError, PanelSpec
from pipelines.regions import PlaceError, check_places, join_places, split_places
from pipelines.request_limits import (
    LimitError,
    check_panel,
    check_panel_count,
    check_seed,
)

HEADERS = ["Text", "Characters", "Seed", "Place", "Speaker"]
WIDTH = len(HEADERS)
Row = list[str]
_SPLIT = re.compile(r"\s*[,;]\s*")


class PanelTableError(GenerationError):
    """A malformed row or a row number out of range (one-line message)."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:  # NaN from an emptied pandas cell
            return ""
        if value == int(value):
            return str(int(value))
    return " ".join(str(value).split())


def normalise_rows(value: Any) -> list[Row]:
    """Any table value (list of lists, a ``{"data": ...}`` dict, a pandas DataFrame) -> rows of
    five strings (:data:`HEADERS`). Missing cells become "", extra cells are dropped."""
    if value is None:
        return []
    if hasattr(value, "values") and hasattr(value, "columns"):  # pandas DataFrame
        value = value.values.tolist()
    elif isinstance(value, dict):
        value = value.get("data") or []
    rows: list[Row] = []
    for raw in value or []:
        cells = list(raw) if isinstance(raw, (list, tuple)) else [raw]
        cells = (cells + [""] * WIDTH)[:WIDTH]
        rows.append([_cell(c) for c in cells])
    return rows


def split_characters(cell: str) -> tuple[str, ...]:
    """``"Ada Lovelace, Alan Turing"`` -> ``("Ada Lovelace", "Alan Turing")`` (duplicates kept once)."""
    out: list[str] = []
    seen: set[str] = set()
    for part in _SPLIT.split(cell or ""):
        name = " ".join(part.split())
        if name and name.casefold() not in seen:
            seen.add(name.casefold())
            out.append(name)
    return tuple(out)


def rows_from_panels(panels: Iterable[Any]) -> list[Row]:
    """Rows from PanelSpecs or the story parser's panels (``text``, ``characters``, ``seed``,
    ``places``, ``speakers``)."""
    rows = []
    for panel in panels:
        seed = getattr(panel, "seed", None)
        rows.append([panel.text, ", ".join(panel.characters), "" if seed is None else str(seed),
                     join_places(getattr(panel, "places", ()) or ()),
                     join_speakers(getattr(panel, "speakers", ()) or ())])
    return rows


def split_speakers(cell: str) -> tuple[str, ...]:
    """``"Ada Lovelace; ; Alan Turing"`` -> ``("Ada Lovelace", "", "Alan Turing")``: one entry
    per quoted line (blank: unknown); trailing blanks dropped."""
    speakers = [" ".join(p.split()) for p in str(cell or "").split(";")]
    while speakers and not speakers[-1]:
        speakers.pop()
    return tuple(speakers)


def join_speakers(speakers: Sequence[str]) -> str:
    """The inverse of :func:`split_speakers` (empty when no speaker is known)."""
    return "; ".join(speakers) if any(speakers) else ""


def panels_from_rows(value: Any, limits: Limits | None = None) -> tuple[PanelSpec, ...]:
    """The table as PanelSpecs (blank rows skipped), within ``configs/limits.yaml``.

    Raises:
        PanelTableError: a row with characters or a seed but no text, a seed that is not a
            whole number >= 0, a row over a limit (panels, text and name lengths, seed range),
            or a place that cannot be read (or more places than characters).
            (An empty list is returned as empty; callers decide.)
    """
    limits = limits or load_limits()
    rows = normalise_rows(value)
    try:
        check_panel_count(sum(1 for row in rows if any(row)), limits)
    except LimitError as exc:
        raise PanelTableError(str(exc)) from None
    panels = []
    for number, (text, characters, seed, place, speaker) in enumerate(rows, start=1):
        if not any((text, characters, seed, place, speaker)):
            continue
        if not text:
            raise PanelTableError(f"row {number}: the panel text is empty; write the sentence "
                                  "or remove the row")
        own_seed = None
        if seed:
            try:
                own_seed = int(seed)
            except ValueError:
                raise PanelTableError(f"row {number}: the seed '{seed[:20]}' is not a whole number; "
                                      "leave it blank for an automatic seed") from None
            if own_seed < 0:
                raise PanelTableError(f"row {number}: the seed must not be negative")
        names = split_characters(characters)
        try:
            places = check_places(split_places(place), names)
        except PlaceError as exc:
            raise PanelTableError(f"row {number}: {exc}") from None
        panel = PanelSpec(text=text, characters=names, seed=own_seed, places=places,
                          speakers=split_speakers(speaker))
        try:
            if own_seed is not None:
                check_seed(own_seed, "the seed", limits)
            check_panel(panel, number, limits)
        except LimitError as exc:
            raise PanelTableError(f"row {number}: {str(exc).removeprefix(f'panel {number}: ')}") from None
        panels.append(panel)
    return tuple(panels)


def _row_index(rows: Sequence[Row], row: Any, what: str) -> int:
    """0-based index of the 1-based ``row``; PanelTableError if it is not a row of the table."""
    if not rows:
        raise PanelTableError(f"the panel list is empty: there is no row to {what}")
    from core.numbers import NotAWholeNumber, whole_number

    try:
        number = whole_number(row, "the row")
    except NotAWholeNumber:
        raise PanelTableError(f"give the number of the row to {what} (1 to {len(rows)})") from None
    if not 1 <= number <= len(rows):
        raise PanelTableError(f"row {number} does not exist; the table has rows 1 to {len(rows)}")
    return number - 1


def add_row(value: Any, after: Any = None) -> list[Row]:
    """A blank row after row ``after`` (1-based); at the end when ``after`` is empty or 0."""
    rows = normalise_rows(value)
    blank = [""] * WIDTH
    if after in (None, "", 0) or (isinstance(after, float) and after == 0):
        return rows + [blank]
    index = _row_index(rows, after, "add after")
    return rows[:index + 1] + [blank] + rows[index + 1:]


def remove_row(value: Any, row: Any) -> list[Row]:
    """The table without row ``row`` (1-based)."""
    rows = normalise_rows(value)
    index = _row_index(rows, row, "remove")
    return rows[:index] + rows[index + 1:]


def move_row(value: Any, row: Any, delta: int) -> tuple[list[Row], int]:
    """Row ``row`` moved by ``delta`` (-1 up, +1 down), clamped to the table; returns the rows and
    the row's new 1-based number."""
    rows = normalise_rows(value)
    index = _row_index(rows, row, "move")
    target = min(max(index + delta, 0), len(rows) - 1)
    moved = rows.pop(index)
    rows.insert(target, moved)
    return rows, target + 1


def set_seed(value: Any, row: int, seed: int) -> list[Row]:
    """The table with row ``row``'s (1-based) seed cell set to ``seed``."""
    rows = normalise_rows(value)
    index = _row_index(rows, row, "set the seed of")
    rows[index][2] = str(int(seed))
    return rows


__all__ = ["HEADERS", "PanelTableError", "add_row", "join_speakers", "split_speakers", "move_row", "normalise_rows", "panels_from_rows",
           "remove_row", "rows_from_panels", "set_seed", "split_characters"]
