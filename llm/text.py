"""Plain-text helpers: sentence splitting, name joining, possessives, tidying.

Nothing here knows about characters beyond the optional ``starters`` hint of
:func:`split_sentences`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

#: Abbreviations that never end a sentence ("Dr. Lee", "Mr. Park").
TITLES = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "mx",
        "dr",
        "prof",
        "st",
        "mt",
        "ft",
        "capt",
        "sgt",
        "lt",
        "col",
        "gen",
        "maj",
        "cmdr",
        "adm",
        "rev",
        "hon",
        "gov",
        "sen",
        "rep",
        "pres",
        "fr",
        "sr",
        "jr",
        "mme",
        "mlle",
        "vs",
        "no",
        "vol",
        "fig",
        "approx",
        "dept",
        "univ",
        "ave",
        "blvd",
        "rd",
    }
)
#: Abbreviations that may end a sentence; after them a sentence starts only before a starter word.
_AMBIGUOUS = frozenset({"jr", "sr", "etc", "inc", "ltd", "co", "corp", "bros"})
TITLE_WORDS = TITLES - _AMBIGUOUS

#: Words that typically open a sentence: after "U.S." or "a.m." they signal a new sentence.
SENTENCE_STARTERS = frozenset(
    {
        "he",
        "she",
        "they",
        "it",
        "we",
        "i",
        "you",
        "his",
        "her",
        "their",
        "its",
        "our",
        "my",
        "your",
        "the",
        "a",
        "an",
        "this",
        "that",
        "these",
        "those",
        "there",
        "then",
        "later",
        "after",
        "before",
        "when",
        "while",
        "meanwhile",
        "suddenly",
        "soon",
        "finally",
        "next",
        "but",
        "and",
        "so",
        "now",
        "once",
        "everyone",
        "nobody",
        "someone",
        "at",
        "in",
        "on",
        "as",
        "if",
        "one",
        "some",
        "all",
    }
)

SPEECH_VERBS = frozenset(
    {
        "said",
        "says",
        "asked",
        "asks",
        "shouted",
        "shouts",
        "yelled",
        "yells",
        "whispered",
        "whispers",
        "replied",
        "replies",
        "answered",
        "answers",
        "cried",
        "cries",
        "called",
        "calls",
        "exclaimed",
        "exclaims",
        "muttered",
        "mutters",
        "added",
        "adds",
        "screamed",
        "told",
        "tells",
        "insisted",
        "continued",
        "admitted",
        "explained",
        "explains",
        "declared",
        "announced",
        "begged",
        "pleaded",
        "murmured",
        "snapped",
        "warned",
        "joked",
        "teased",
        "demanded",
        "wondered",
    }
)
_QUOTE_ONLY_RE = re.compile(r"[\"“][^\"“”]*[\"”]")

_TERMINATOR_RE = re.compile(r"(\.\.\.|…|[.!?])+([\"”’')\]]*)(?=\s)")
_WORD_BEFORE_RE = re.compile(r"([\w.'’-]+)$")
_WORD_AFTER_RE = re.compile(r"[\"“'‘(\[]*([\w'’-]+)")
#: A regnal or model number after a name ("Henry VIII.", "Mark I."): ends a sentence only when a
#: typical opener follows.
_ROMAN_RE = re.compile(r"(?:X{0,3})(?:IX|IV|V?I{0,3})")
_CAPITALISED_BEFORE_RE = re.compile(r"[A-Z][\w'’-]*\s+$")
_ATTRIBUTION_RE = re.compile(
    r"(?:[A-Z][\w'’.-]*\s+){1,4}?(?:\w+ly\s+)?(" + "|".join(sorted(SPEECH_VERBS)) + r")\b"
)


def _quote_depths(text: str) -> list[bool]:
    """For each character, whether the position right after it is inside double quotes."""
    inside = False
    states: list[bool] = []
    for ch in text:
        if ch == '"':
            inside = not inside
        elif ch == "“":
            inside = True
        elif ch == "”":
            inside = False
        states.append(inside)
    return states


def _is_boundary(para: str, match: re.Match[str], inside: list[bool], starters: frozenset[str]) -> bool:
    """Whether the terminator ``match`` ends a sentence."""
    end = match.end()
    if inside[end - 1]:
        return False  # a full stop inside a quotation: "I'm tired. Let's go."
    rest = para[end:].lstrip()
    if not rest:
        return False
    first = rest[0]
    if first.islower():
        return False  # "Hi!" she said.   9 a.m. on Monday
    if not (first.isupper() or first.isdigit() or first in "\"“'‘(["):
        return False
    after = _WORD_AFTER_RE.match(rest)
    next_word = after.group(1) if after else ""
    closers = match.group(2)
    if closers and any(q in closers for q in "\"”'’"):
        # "We must go!" Tom Hardy shouted.  -- the attribution belongs to the quoted sentence
        return not _ATTRIBUTION_RE.match(rest)
    if match.group(0).startswith(".") and match.group(0).rstrip("\"”’')]") == ".":
        before = _WORD_BEFORE_RE.search(para[: match.start()])
        word = before.group(1) if before else ""
        bare = word.strip(".'’").lower()
        if bare in TITLES and bare not in _AMBIGUOUS:
            return False  # Dr. Lee
        if word and before and _ROMAN_RE.fullmatch(word) \
                and _CAPITALISED_BEFORE_RE.search(para[: before.start()]):
            return next_word.lower() in starters  # "Henry VIII. ruled", "the Mark I. She ..."
        if len(word) == 1 and word.isalpha() and word.isupper():
            return False  # an initial: J. K. Rowling
        if "." in word or bare in _AMBIGUOUS:
            # U.S. / a.m. / Jr. / etc.: a new sentence only if a typical opener follows
            return next_word.lower() in starters
    return True


def split_sentences(text: str, starters: Iterable[str] = ()) -> list[str]:
    """Split a story into sentences.

    Handles titles ("Dr. Lee"), initials ("J. K."), dotted abbreviations ("U.S.", "a.m."),
    full stops inside quotations and quoted speech followed by its attribution
    (``"Go!" Tom Hardy shouted.`` stays one sentence); a sentence that is only a quotation is
    joined to the next one (``"Hello." Ben waved.``). Blank lines always end a sentence.

    Args:
        text: the story.
        starters: extra words (e.g. character names) that may open a sentence after an
            abbreviation such as "U.S.".
    """
    starter_set = SENTENCE_STARTERS | {s.lower() for s in starters}
    sentences: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(para.split())
        if not para:
            continue
        inside = _quote_depths(para)
        start = 0
        found: list[str] = []
        for match in _TERMINATOR_RE.finditer(para):
            if _is_boundary(para, match, inside, starter_set):
                sentence = para[start : match.end()].strip()
                if sentence:
                    found.append(sentence)
                start = match.end()
        tail = para[start:].strip()
        if tail:
            found.append(tail)
        sentences += _merge_quotes(found)
    return sentences


def _merge_quotes(sentences: list[str]) -> list[str]:
    """Join a sentence that is only a quotation to the next one: '"Hello." Ben waved.'."""
    merged: list[str] = []
    pending = ""
    for sentence in sentences:
        if _QUOTE_ONLY_RE.fullmatch(sentence):
            pending = f"{pending} {sentence}".strip()
            continue
        merged.append(f"{pending} {sentence}".strip())
        pending = ""
    if pending:
        merged.append(pending)
    return merged


def join_names(names: Sequence[str]) -> str:
    """``["A"]`` -> "A"; ``["A", "B"]`` -> "A and B"; ``["A", "B", "C"]`` -> "A, B and C"."""
    names = list(names)
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


def possessive(phrase: str) -> str:
    """The possessive of a name or a joined group: always ``'s`` ("Keanu Reeves's", "A and B's")."""
    return phrase + "'s"


def capitalize_first(text: str) -> str:
    """Upper-case the first letter of a sentence, skipping opening quotes and brackets."""
    for i, ch in enumerate(text):
        if ch.isalpha():
            return text[:i] + ch.upper() + text[i + 1 :]
        if ch not in "\"“'‘([ ":
            return text
    return text


def tidy(text: str) -> str:
    """Collapse spaces and fix the spacing around punctuation left by edits."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r",(\s*,)+", ",", text)
    text = re.sub(r",\s*([.!?])", r"\1", text)
    text = re.sub(r"^[,;:]\s*", "", text)
    return text


def words_of(text: str) -> list[str]:
    """Lower-cased words of ``text`` (letters, digits, apostrophes and hyphens inside words)."""
    return [w.lower() for w in re.findall(r"[\w][\w'’-]*", text)]
