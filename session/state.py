"""A browser session's data and the value objects the steps return (all plain dataclasses).

:class:`Session` is one browser session's data (kept in ``gr.State``): its owner (multi-user
mode), the cast, a pending deletion, the identities carried by an opened project zip, the drawn
comic (every candidate, its scores, the chosen one per panel, the pages and the exported files)
and the id of its saved copy in My comics.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PIL import Image

from identities.names import name_key
from identities.owners import Owner
from pipelines.loras import LoraChoice
from pipelines.panel_table import Row
from pipelines.project import ComicRequest, EmbeddedIdentity, Project

if TYPE_CHECKING:  # pragma: no cover
    from faces.similarity import PanelScore
    from pipelines.generation import PanelResult
    from pipelines.layout import Box

logger = logging.getLogger(__name__)



#: Largest seed the app offers (the generator accepts more; 2**31 keeps the number field exact).
MAX_UI_SEED = 2**31 - 1
PLACEHOLDER_FACE = "no_face.png"


@dataclass
class StyleSettings:
    """The Style and settings step: what every panel of the next comic is drawn with."""

    style: str
    keywords: tuple[str, ...] = ()
    negative_prompt: str = ""
    seed: int = 0
    randomize: bool = False
    steps: int = 30
    guidance: float = 8.5
    width: int = 1024
    height: int = 1024
    candidates: int = 1
    title: str = ""
    face_pass: bool = True
    loras: tuple[LoraChoice, ...] = ()


@dataclass
class DrawnPanel:
    """Every candidate of one drawn panel, their face-similarity scores and the chosen one."""

    text: str
    results: list["PanelResult"]
    scores: list["PanelScore | None"]
    chosen: int = 0
    faces: dict[int, list["Box"]] = field(default_factory=dict)

    @property
    def image(self) -> Image.Image:
        return self.results[self.chosen].image

    @property
    def faces_caption(self) -> str:
        """Which face is whose in the chosen candidate, as the face pass matched them
        ("left face: Ada Lovelace · right face: Alan Turing"); "" when it redrew none."""
        from pipelines.face_pass import faces_caption

        result = self.results[self.chosen]
        return faces_caption(result.faces, result.image.width)

    def chosen_faces(self, detector: Any) -> list["Box"]:
        """Face boxes of the chosen candidate, for speech bubbles; found once per candidate.

        A scored candidate already went through the detector: its score carries the boxes.
        """
        from pipelines.layout import detect_faces, face_boxes

        if self.chosen not in self.faces:
            score = self.scores[self.chosen]
            self.faces[self.chosen] = face_boxes(score.face_boxes) if score is not None \
                else detect_faces(detector, [self.image])[0]
        return self.faces[self.chosen]


@dataclass
class Comic:
    """The session's drawn comic.

    ``page_files`` are the exported page PNGs: the pages gallery shows these files, so Gradio
    copies them instead of encoding every page again on each event (0.6 s of shared CPU per
    1600 px page).
    """

    request: ComicRequest
    title: str
    panels: list[DrawnPanel]
    pages: list[Image.Image] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    page_files: list[str] = field(default_factory=list)


@dataclass
class Session:
    """One browser session (kept in ``gr.State``; never shared between sessions).

    Attributes:
        id: names the session's download folder (given on first export: ``gr.State`` deep-copies
            its initial value, so a default id would be shared by every session).
        cast: full names of the story's characters, in the order added.
        pending_delete: the identity awaiting a confirmed deletion.
        embedded: identities carried by an opened project zip (used when the library lacks them).
        restored: the opened project; its candidate choices apply while its request is unchanged.
        comic: the drawn comic, or None (kept until a new one is complete).
        story: the story text last parsed (or restored from a project); saved with the comic.
        drawing: the panels of a comic being drawn, while Generate runs.
        owner: whose library and comics this session uses (multi-user mode; set by
            :meth:`Studio.sign_in` or on first use). saved_id: the drawn or reopened comic's id in
            My comics: Generate updates that entry (unless asked to save a new one); opening
            another project or parsing a new story clears it.
        descriptions: per-comic character descriptions (name -> text, "" for none) that win
            over the library's; an opened project puts the ones it was drawn with here.
    """

    id: str = ""
    owner: Owner | None = None
    saved_id: str = ""
    cast: list[str] = field(default_factory=list)
    pending_delete: str | None = None
    embedded: dict[str, EmbeddedIdentity] = field(default_factory=dict)
    restored: Project | None = None
    comic: Comic | None = None
    story: str = ""
    drawing: Comic | None = None
    descriptions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ParseOutcome:
    """The story parser's panels as table rows, and what to tell the user about them.

    Attributes:
        addable: library identities the story names that are not in the cast (one click adds).
    """

    rows: list[Row]
    info: str
    warnings: tuple[str, ...] = ()
    addable: tuple[str, ...] = ()


@dataclass(frozen=True)
class ComicUpdate:
    """One step of drawing: the panels so far (with captions) and, at the end, pages and files."""

    gallery: list[tuple[Image.Image, str]]
    status: str
    seed: int
    notes: str = ""
    done: bool = False
    pages: list[str] = field(default_factory=list)  # page PNG files
    files: list[str] = field(default_factory=list)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class RestoredProject:
    """What opening a project puts back into the app (``story``: "" when the file has none)."""

    rows: list[Row]
    settings: StyleSettings
    cast: list[str]
    info: str
    warnings: tuple[str, ...] = ()
    story: str = ""


@dataclass(frozen=True)
class PanelCard:
    """What the Comic step shows for one panel.

    Attributes:
        image: the chosen candidate.
        text: markdown: number, sentence, face score, seed and candidate.
        candidates: (image, caption) of every candidate (one: no choice to make); the chosen
            one's caption starts with "✓ N in the comic".
        chosen: the index of the chosen candidate in ``candidates``.
    """

    image: Image.Image
    text: str
    candidates: list[tuple[Image.Image, str]]
    chosen: int = 0


# ----------------------------------------------------------------------------- the studio

def find_name(mapping: Mapping[str, Any], name: str) -> Any:
    key = name_key(name)
    for stored, value in mapping.items():
        if name_key(stored) == key:
            return value
    return None


__all__ = ['MAX_UI_SEED', 'PLACEHOLDER_FACE', 'Comic', 'ComicUpdate', 'DrawnPanel', 'PanelCard', 'ParseOutcome', 'RestoredProject', 'Session', 'StyleSettings', 'find_name']
