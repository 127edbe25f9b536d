"""The Story step: parse a story for the cast into the panel table."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from identities.names import name_key
from llm import parse_story
from pipelines.panel_table import rows_from_panels
from session.errors import StudioError
from session.state import ParseOutcome, Session

if TYPE_CHECKING:  # pragma: no cover
    pass

logger = logging.getLogger(__name__)


class StorySteps:
    """Story parsing (mixed into :class:`~session.studio.Studio`)."""

    def parse(self, session: Session, story: str | None) -> ParseOutcome:
        """Parse the story for the cast (Gemini with a key, else offline) into table rows.

        People the story names outside the cast are given to the parser too (so "she" after
        "Marie Curie" is read as Marie Curie, not as the only woman of the cast); their panels
        keep them in the Characters column, where Generate refuses them until they are cast.
        """
        text = story or ""
        if not text.strip():
            raise StudioError("the story is empty; write a few sentences that name the characters")
        self.safety.check(text, "story")
        if not session.cast:
            raise StudioError("the cast is empty: add the story's characters on the Characters step "
                              "first")
        from llm.characters import MAX_CHARACTERS
        from llm.people import find_outsiders

        outsiders = find_outsiders(text, session.cast, self.library_names(session))
        extra = [(name, self._pronouns(session, name)) for name in outsiders.known]
        extra += [(name, "") for name in outsiders.unknown]
        characters = self.cast_characters(session) + extra[:max(0, MAX_CHARACTERS - len(session.cast))]
        result = parse_story(text, characters, config=self.config.llm)
        if not result.panels:
            raise StudioError("the parser found no panels in the story")
        if text != session.story:
            session.saved_id = ""  # a new story: the next Generate saves a new comic
        session.story = text
        outside = {name_key(n) for n in outsiders.all}
        warnings = tuple(w for w in result.warnings
                         if not any(w.startswith(n + " ") for n in outsiders.all))
        info = _parse_report(result, outsiders, warnings, outside)
        return ParseOutcome(rows=rows_from_panels(result.panels), info=info, warnings=warnings,
                            addable=outsiders.known)


def _parse_report(result: Any, outsiders: Any, warnings: Sequence[str], outside: set[str]) -> str:
    """The Story step's markdown after Process Text: panels, parser, people outside the cast,
    unresolved pronouns, empty panels, other warnings."""
    n = len(result.panels)
    lines = [f"**{n} panel{'s' if n != 1 else ''}**, {result.describe()}."]
    if outsiders.known:
        lines.append(f"**Not in the cast:** {', '.join(outsiders.known)} (in your library: press "
                     "**Add to the cast** below).")
    if outsiders.unknown:
        lines.append(f"**Named but not in the cast or the library:** {', '.join(outsiders.unknown)}. "
                     "If they are people, train them on **1 · Characters**; otherwise remove them "
                     "from the panels' Characters column.")
    if outsiders.all:
        numbers = [str(i + 1) for i, p in enumerate(result.panels)
                   if any(name_key(c) in outside for c in p.characters)]
        if numbers:
            lines.append(f"Panels {', '.join(numbers)} cannot be drawn until everyone in them is in "
                         "the cast.")
    unresolved = [w for w in warnings if "could not tell who" in w]
    if unresolved:
        lines.append("**Pronouns not resolved:** " + "; ".join(unresolved) + ".")
    empty = [str(i + 1) for i, p in enumerate(result.panels) if not p.characters]
    if empty:
        lines.append(f"**Nobody in panel{'s' if len(empty) > 1 else ''} {', '.join(empty)}:** "
                     "drawn without a character; add names in the Characters column if someone "
                     "should be there.")
    others = [w for w in warnings if w not in unresolved]
    if others:
        lines.append("\n".join(f"* {w}" for w in others))
    return "\n\n".join(lines)



__all__ = ['StorySteps']
