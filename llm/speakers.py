"""Who speaks each quoted line of a panel sentence (for speech bubbles that point at the speaker).

A panel sentence has its characters' full names (the parsers make sure of that), so the rules
only look for a full name next to a speech verb (:data:`llm.text.SPEECH_VERBS`):

* ``Ada Lovelace said, "Hello."`` / ``Ada Lovelace: "Hello."`` -> the name before the quote;
* ``"Hello," Ada Lovelace said.`` / ``"Hello," said Ada Lovelace.`` -> the name after it;
* otherwise, when the panel names exactly one character, that character; else unknown ("").

Quoted lines are the layout's: ``"..."`` or ``“...”``. :func:`normalise_quotes` first turns a
single-quoted line next to a speech verb (``Ada said, 'Hello'``) into a double-quoted one, so it
becomes a bubble too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from llm.text import SPEECH_VERBS

#: A quoted line, as :mod:`pipelines.layout` finds it.
QUOTE = re.compile(r"\"([^\"]+)\"|\u201c([^\u201d]+)\u201d")
_VERBS = "|".join(sorted(SPEECH_VERBS, key=len, reverse=True))
_SINGLE_AFTER_VERB = re.compile(rf"(\b(?:{_VERBS})\b[^'\"\u2018\u201c]{{0,40}}?[,:]\s*)"
                                r"['\u2018]([^'\u2019\"]+?)['\u2019](?=[\s.,!?;]|$)", re.IGNORECASE)
_SINGLE_BEFORE_VERB = re.compile(rf"(^|[\s(])['\u2018]([^'\u2019\"]+?[,.!?])['\u2019]"
                                 rf"(?=\s+(?:[A-Z][\w'\u2019.-]*\s+){{0,4}}(?:{_VERBS})\b)")


def normalise_quotes(text: str) -> str:
    """``Ada said, 'Hello'`` -> ``Ada said, "Hello"`` and ``'Hi,' Ada said`` -> ``"Hi," Ada
    said``; apostrophes ("Ada's") and other single quotes are left alone."""
    text = _SINGLE_AFTER_VERB.sub(lambda m: f'{m.group(1)}"{m.group(2)}"', text)
    return _SINGLE_BEFORE_VERB.sub(lambda m: f'{m.group(1)}"{m.group(2)}"', text)


def _name(names: Sequence[str], group: str = "name") -> str:
    """A regex group matching any of ``names`` (longest first; words joined by any space)."""
    alternatives = sorted(names, key=len, reverse=True)
    return f"(?P<{group}>" + "|".join(r"\s+".join(re.escape(w) for w in n.split())
                                  for n in alternatives) + ")"


def find_speakers(text: str, names: Sequence[str]) -> list[str]:
    """The speaker of each quoted line of ``text``, in order ("" where none is found).

    Args:
        text: one panel sentence with full names.
        names: the panel's characters (full names); a speaker is always one of them.
    Returns:
        One entry per quoted line; empty when the sentence has no quoted line.
    """
    quotes = list(QUOTE.finditer(text))
    if not quotes:
        return []
    names = [n for n in names if n.strip()]
    if not names:
        return [""] * len(quotes)
    canonical = {" ".join(n.split()).casefold(): n for n in names}
    name = _name(names)
    verb = rf"(?:\w+ly\s+)?(?:{_VERBS})\b"
    verb_before = re.compile(rf"(?<![\w-]){name}\s+{verb}", re.IGNORECASE)
    colon_before = re.compile(rf"(?<![\w-]){name}\s*:\s*$", re.IGNORECASE)
    named_after = re.compile(rf"^[\s,.!?;:]*(?:{name}\s+{verb}|(?:{_VERBS})\s+{_name(names, 'other')}"
                             r"(?![\w-]))",
                             re.IGNORECASE)
    speakers = []
    for i, quote in enumerate(quotes):
        before = text[quotes[i - 1].end() if i else 0:quote.start()]
        after = text[quote.end():quotes[i + 1].start() if i + 1 < len(quotes) else len(text)]
        found = None
        match = named_after.match(after) or colon_before.search(before)
        if match:
            found = match.groupdict().get("name") or match.groupdict().get("other")
        else:
            said = list(verb_before.finditer(before))
            found = said[-1].group("name") if said else None
        if found is None and i and speakers[-1] and not re.search(r"\w", before):
            found = speakers[-1]  # "Hi." "How are you?" said Ada: one speaker goes on
        if found is None and len(names) == 1:
            found = names[0]
        speakers.append(canonical.get(" ".join(found.split()).casefold(), "") if found else "")
    return speakers


__all__ = ["QUOTE", "find_speakers", "normalise_quotes"]
