"""What the Comic step shows: panel cards, captions, badges and the notes table."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from PIL import Image

from pipelines.descriptions import description_of
from pipelines.project import ComicRequest
from session.errors import StudioError, zero_based
from session.state import Comic, DrawnPanel, PanelCard, Session

if TYPE_CHECKING:  # pragma: no cover
    pass

logger = logging.getLogger(__name__)


class CardViews:
    """Views of the drawn comic (mixed into :class:`~session.studio.Studio`)."""

    def _caption(self, index: int, panel: DrawnPanel) -> str:
        text = f"{index + 1}. {panel.text}"
        lines = [text, self._badge(panel, panel.chosen), panel.faces_caption]
        return "\n".join(line for line in lines if line)

    def _badge(self, panel: DrawnPanel, candidate: int) -> str:
        result = panel.results[candidate]
        if not result.characters:
            return ""
        score = panel.scores[candidate]
        if score is None:
            reason = "unavailable" if self.similarity() is None else "no reference face"
            return f"face similarity {reason}"
        return score.badge()


    def _comic(self, session: Session) -> Comic:
        if session.comic is None:
            raise StudioError("there is no comic yet: press Generate first")
        return session.comic

    def _panel_index(self, comic: Comic, number: Any) -> int:
        return zero_based(number, len(comic.panels), "panel", "the comic has panels")

    def _notes(self, panels: Sequence[DrawnPanel], request: ComicRequest) -> str:
        """Markdown table; the seed is the panel's (as in the Story table), plus the candidate."""
        if not panels:
            return ""
        lines = ["| Panel | Sentence | Face similarity | Seed |", "|---|---|---|---|"]
        for i, panel in enumerate(panels):
            badge = self._badge(panel, panel.chosen) or "no characters"
            text = panel.text.replace("|", "\\|")
            lines.append(f"| {i + 1} | {text} | {badge} | {self._seed_text(panel, request, i)} |")
        return "\n".join(lines)

    @staticmethod
    def _seed_text(panel: DrawnPanel, request: ComicRequest, index: int) -> str:
        """'1234' or '1234, candidate 2 of 3': the panel seed the Story table holds."""
        seed = request.panel_seed(index)
        if len(panel.results) > 1:
            return f"{seed}, candidate {panel.chosen + 1} of {len(panel.results)}"
        return str(seed)

    def panel_notes(self, session: Session) -> str:
        """A markdown table of the panels: sentence, face-similarity badge, seed and candidate."""
        comic = session.comic
        return self._notes(comic.panels, comic.request) if comic is not None else ""

    def cards(self, session: Session) -> list[PanelCard]:
        """One card per panel of the comic being drawn (while Generate runs) or of the comic."""
        comic = session.drawing or session.comic
        if comic is None:
            return []
        out = []
        for i, panel in enumerate(comic.panels):
            badge = self._badge(panel, panel.chosen) or "no characters"
            text = (f"**{i + 1}.** {panel.text}\n\n{badge} · seed "
                    f"{self._seed_text(panel, comic.request, i)}")
            if panel.faces_caption:  # which face is whose, as the face pass matched them
                text += f"\n\n{panel.faces_caption}"
            described = comic.request.description_map
            prompt = panel.results[panel.chosen].prompt
            if described and i < len(comic.request.panels) and any(
                    description_of(described, n) for n in comic.request.panels[i].characters):
                text += f"\n\n*Prompt:* {prompt}"  # the descriptions it was drawn with
            strip = [(r.image, (f"✓ {c + 1} in the comic" if c == panel.chosen else f"{c + 1}")
                      + (f" · {self._badge(panel, c)}" if self._badge(panel, c) else ""))
                     for c, r in enumerate(panel.results)] if len(panel.results) > 1 else []
            out.append(PanelCard(image=panel.image, text=text, candidates=strip,
                                 chosen=panel.chosen))
        return out

    def panel_gallery(self, session: Session) -> list[tuple[Image.Image, str]]:
        """(chosen image, caption with the face-similarity badge) of every panel."""
        if session.comic is None:
            return []
        return [(p.image, self._caption(i, p)) for i, p in enumerate(session.comic.panels)]

    def candidates(self, session: Session, number: Any) -> list[tuple[Image.Image, str]]:
        """Every candidate of panel ``number`` (1-based) with its badge; the chosen one marked."""
        comic = self._comic(session)
        panel = comic.panels[self._panel_index(comic, number)]
        items = []
        for c, result in enumerate(panel.results):
            badge = self._badge(panel, c)
            mark = " (in the comic)" if c == panel.chosen else ""
            items.append((result.image, f"candidate {c + 1}{mark}" + (f"\n{badge}" if badge else "")))
        return items


__all__ = ['CardViews']
