"""Checks that a list of panels is a faithful, pronoun-free rendering of a story.

Used on every Gemini reply (a reply that fails any check is rejected and the offline parser is
used instead); usable on user-edited panels too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from llm.characters import Character
from llm.offline import PRONOUN_RE, build_name_matcher, names_in
from llm.panel import Panel
from llm.speakers import find_speakers
from llm.text import split_sentences, words_of

MAX_PANELS = 60
MAX_PANEL_WORDS = 60
#: Minimum share of a panel's content words that must come from the story ("nothing invented").
MIN_STORY_WORD_SHARE = 0.5

_STOPWORDS = frozenset(
    """
a an the and or but nor so to of in on at by for with from into onto up down out off over under
about after before while when then than that this these those there here is was are were be been
being has had have do does did will would can could should shall may might must not no yes very
too also just both all each every some any one two three it its as if because since until again
once together each other
""".split()
)


class PanelCheckError(ValueError):
    """Panels fail a check; the message is one line naming the panel and the problem."""


def _stem(word: str) -> str:
    return word.replace("’", "'").split("'")[0][:5]


def _content_words(text: str, name_words: set[str]) -> list[str]:
    return [
        w
        for w in words_of(text)
        if len(w) > 2 and w not in _STOPWORDS and w.split("'")[0].split("’")[0] not in name_words
    ]


def panels_from_json(text: str) -> list[Panel]:
    """Read ``{"panels": [{"text", "characters"}]}`` (or a bare list) from a JSON string.

    Raises:
        PanelCheckError: not JSON, or not that shape.
    """
    try:
        data: Any = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise PanelCheckError(f"reply is not valid JSON ({type(exc).__name__})") from None
    if isinstance(data, dict):
        data = data.get("panels")
    if not isinstance(data, list):
        raise PanelCheckError("reply has no 'panels' list")
    panels = []
    for i, item in enumerate(data, 1):
        try:
            panels.append(Panel.from_dict(item))
        except ValueError as exc:
            raise PanelCheckError(f"panel {i}: {exc}") from None
    return panels


def check_panels(panels: Sequence[Panel], story: str, characters: Sequence[Character]) -> list[Panel]:
    """Validate panels against the story and return them with ``characters`` normalised.

    Checks: 1-60 panels; each text a single sentence of at most 60 words; listed characters are
    known full names and occur in the text; no third-person pronoun and no first name or surname
    alone; every named character occurs in the story; at least half of each panel's content
    words come from the story; panels follow the story's order. Characters named in a text but
    not listed are added (in order of occurrence).

    Raises:
        PanelCheckError: the first failed check.
    """
    if not panels:
        raise PanelCheckError("no panels")
    if len(panels) > MAX_PANELS:
        raise PanelCheckError(f"{len(panels)} panels (at most {MAX_PANELS})")
    known = {c.name.casefold(): c.name for c in characters}
    matcher = build_name_matcher(characters)
    in_story = {matcher.group_names[m.lastgroup or ""] for m in matcher.regex.finditer(story)}
    story_sentences = split_sentences(story)
    name_words = {w.lower() for c in characters for w in c.words}
    story_stems = [{_stem(w) for w in _content_words(s, name_words)} for s in story_sentences]
    all_story_stems = set().union(*story_stems) if story_stems else set()

    result: list[Panel] = []
    last_anchor = 0
    for i, panel in enumerate(panels, 1):
        text = " ".join(panel.text.split())
        where = f"panel {i}"
        if len(split_sentences(text)) != 1:
            raise PanelCheckError(f"{where} is more than one sentence")
        if len(text.split()) > MAX_PANEL_WORDS:
            raise PanelCheckError(f"{where} is longer than {MAX_PANEL_WORDS} words")
        listed = []
        for name in panel.characters:
            canonical = known.get(" ".join(name.split()).casefold())
            if canonical is None:
                raise PanelCheckError(f"{where} lists an unknown character {name!r}")
            listed.append(canonical)
        named = names_in(text, characters)
        for name in listed:
            if name not in named:
                raise PanelCheckError(f"{where} lists {name} but does not name them in full")
        pronoun = PRONOUN_RE.search(text)
        if pronoun:
            raise PanelCheckError(f"{where} still contains the pronoun {pronoun.group(1)!r}")
        remainder = text
        for name in named:
            remainder = re.sub(re.escape(name), " ", remainder)
        for c in characters:
            for alias in (c.first_name, c.surname):
                if alias and re.search(rf"(?<![\w-]){re.escape(alias)}(?![\w-])", remainder):
                    raise PanelCheckError(f"{where} calls {c.name} {alias!r} instead of the full name")
        for name in named:
            if name not in in_story:
                raise PanelCheckError(f"{where} names {name}, who is not in the story")
        content = [_stem(w) for w in _content_words(text, name_words)]
        if len(content) >= 2:
            share = sum(1 for w in content if w in all_story_stems) / len(content)
            if share < MIN_STORY_WORD_SHARE:
                raise PanelCheckError(f"{where} strays from the story ({share:.0%} of its words are in it)")
        if story_stems and content:
            overlaps = [len(set(content) & s) for s in story_stems]
            best = max(overlaps)
            if best > 0:
                anchors = [j for j, o in enumerate(overlaps) if o == best]
                anchor = next((j for j in anchors if j >= last_anchor), anchors[0])
                if anchor < last_anchor:
                    raise PanelCheckError(f"{where} is out of the story's order")
                last_anchor = anchor
        quoted = find_speakers(text, named)
        given = [known.get(" ".join(s.split()).casefold(), "") for s in panel.speakers]
        speakers = [given[k] if k < len(given) and given[k] in named else found
                    for k, found in enumerate(quoted)]
        result.append(Panel(text=text, characters=named, speakers=speakers))
    return result
