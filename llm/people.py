"""People a story names who are not in its cast.

Two kinds, told apart because the app treats them differently:

* **known** — identities of the library (full name, any case) that the story names but the cast
  lacks: certain, so the app offers to add them and Generate refuses panels naming them;
* **unknown** — runs of 2 to 4 capitalised words that look like a person's name ("Marie Curie",
  "Grace B. Hopper") and are neither cast nor library names: a guess (places and things are
  filtered by a word list), reported so the user can train them or ignore the note.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from llm.text import SENTENCE_STARTERS

#: Capitalised words that open a sentence or a phrase, never a person's first name.
_LEADING = frozenset(
    """
the a an after before when while then and but or so if as at in on of by for with from to into
one two three both all every each some this that these those there here later meanwhile suddenly
finally today tomorrow yesterday tonight once dear hello hi goodbye yes no oh mr mrs ms dr
""".split()
) | SENTENCE_STARTERS
#: Words that make a capitalised run a place, an organisation, a date or a thing.
_NOT_A_PERSON = frozenset(
    """
street road avenue lane drive boulevard square plaza park garden gardens city town village york
angeles francisco diego vegas jersey university college school academy institute station airport
bridge river lake sea ocean bay beach island mountain mount valley hotel cafe café restaurant bar
pub museum library hospital church cathedral temple tower hall castle palace bank company inc ltd
corporation club center centre market store shop mall kingdom states republic empire north south
east west central united national international monday tuesday wednesday thursday friday saturday
sunday january february march april may june july august september october november december
christmas easter tv radio internet google apple microsoft nasa space shuttle mark computer
""".split()
)
_RUN_RE = re.compile(
    r"(?<![\w-])((?:[A-Z][a-z'’-]+|[A-Z]\.)(?:\s+(?:[A-Z][a-z'’-]+|[A-Z]\.)){1,3})(?![\w-])"
)


@dataclass(frozen=True)
class Outsiders:
    """People named in a text but not in the cast (each list in order of first mention)."""

    known: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return self.known + self.unknown


def _key(name: str) -> str:
    return " ".join(name.replace("’", "'").split()).casefold()


def _mentions(text: str, name: str) -> list[int]:
    pattern = r"\s+".join(re.escape(w) for w in name.split())
    return [m.start() for m in re.finditer(rf"(?<![\w-]){pattern}(?![\w-])", text, re.IGNORECASE)]


def _unknown_runs(text: str, taken: set[str]) -> list[tuple[int, str]]:
    found = []
    for match in _RUN_RE.finditer(text):
        words = match.group(1).split()
        start = match.start(1)
        while words and words[0].strip(".").lower() in _LEADING:
            start += len(words[0]) + 1
            words = words[1:]
        if len(words) < 2 or any(w.lower().strip(".'’") in _NOT_A_PERSON for w in words):
            continue
        if not any(len(w.strip(".")) > 1 for w in words[-1:]):
            continue  # ends in an initial
        name = " ".join(words)
        if not any(_key(name) in t or t in _key(name) for t in taken):
            found.append((start, name))
    return found


def find_outsiders(text: str, cast: Sequence[str], library: Iterable[str]) -> Outsiders:
    """The people ``text`` names who are not in ``cast`` (see the module docstring).

    Args:
        text: a story or one panel's sentence.
        cast: the full names of the story's characters.
        library: the full names of every identity the user can add.
    """
    cast_keys = {_key(n) for n in cast}
    known: list[tuple[int, str]] = []
    for name in library:
        if _key(name) in cast_keys:
            continue
        spots = _mentions(text, name)
        if spots:
            known.append((spots[0], name))
    taken = cast_keys | {_key(n) for _, n in known}
    unknown = _unknown_runs(text, taken)
    seen: set[str] = set()
    ordered_unknown = []
    for _, name in sorted(unknown):
        if _key(name) not in seen:
            seen.add(_key(name))
            ordered_unknown.append(name)
    return Outsiders(known=tuple(n for _, n in sorted(known)), unknown=tuple(ordered_unknown))


__all__ = ["Outsiders", "find_outsiders"]
