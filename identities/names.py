"""Identity names and pronouns: validation and normalisation with one-line user messages.

A name is what the story uses for a person ("Ada Lovelace", "Agent 47"): 1 to 4 words made of
letters (any script), digits, hyphens, apostrophes and periods, with at least one letter.
:func:`validate_name` returns the name NFKC-normalised (so full-width "Ａｄａ" and "Ada" are one
name) with single spaces; :func:`name_key` is the case- and apostrophe-insensitive key the library
matches names by. :func:`printable` and :func:`show` make any text safe to echo in a one-line
message (control and direction-override characters escaped).
"""

from __future__ import annotations

import re
import unicodedata

from configs import load_limits

MAX_NAME_LENGTH = load_limits().name_chars
MAX_NAME_WORDS = 4
NAME_PUNCTUATION = "-'’."
PRONOUNS = ("he", "she", "they")
#: Every pronoun form accepted, mapped to its class (he / she / they); the story parser uses it too.
PRONOUN_CLASS_OF = {
    "he": "he", "him": "he", "his": "he", "himself": "he",
    "she": "she", "her": "she", "hers": "she", "herself": "she",
    "they": "they", "them": "they", "their": "they", "theirs": "they", "themself": "they",
    "themselves": "they",
}
_EXAMPLE = "e.g. 'Ada Lovelace'"


class LibraryError(ValueError):
    """A problem with the identity library or its input; the message is one line for the user."""


class InvalidName(LibraryError):
    """A name that cannot be an identity's name (empty, no letter, symbols, too long, ...)."""


class InvalidPronouns(LibraryError):
    """Pronouns other than he / she / they (or empty)."""


def printable(text: str) -> str:
    """``text`` with every non-printable character (controls, newlines, bidi overrides such as
    U+202E, other format characters) written as its escape (``\\n``, ``\\u202e``)."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def one_line(text: str) -> str:
    """``text`` as one safe line for an error message: whitespace runs become one space, other
    non-printable characters are escaped (:func:`printable`)."""
    return printable(" ".join(text.split()))


def show(text: str, limit: int = 40) -> str:
    """``text`` quoted for a one-line message: control characters escaped, long text cut."""
    shown = printable(text)
    if len(shown) > limit:
        shown = shown[:limit - 1] + "…"
    return f"'{shown}'"


def validate_name(name: object) -> str:
    """Check ``name`` and return it normalised (NFKC, trimmed, single spaces).

    Raises:
        InvalidName: with a one-line message saying what is wrong and what is allowed.
    """
    if not isinstance(name, str):
        raise InvalidName(f"the name must be text, not {type(name).__name__}")
    if len(name) > 4 * MAX_NAME_LENGTH:  # before any per-character work
        raise InvalidName(f"the name is too long ({len(name):,} characters; at most "
                          f"{MAX_NAME_LENGTH})")
    text = unicodedata.normalize("NFKC", name).strip()
    for ch in text:
        if unicodedata.category(ch).startswith("C"):
            raise InvalidName(f"the name {show(text)} contains a control character "
                              f"({ascii(ch)}); use only letters, digits, spaces, hyphens, "
                              "apostrophes and periods")
    text = " ".join(text.split())
    if not text:
        raise InvalidName(f"the name is empty; enter the person's full name, {_EXAMPLE}")
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidName(f"the name is too long ({len(text)} characters; at most "
                          f"{MAX_NAME_LENGTH})")
    for ch in text:
        if ch in "/\\":
            raise InvalidName(f"the name {show(text)} contains a path separator ('{ch}'); "
                              "use only letters, digits, spaces, hyphens, apostrophes and periods")
        if not (ch == " " or ch in NAME_PUNCTUATION or unicodedata.category(ch)[0] in "LM"
                or unicodedata.category(ch) == "Nd"):
            raise InvalidName(f"the name {show(text)} contains {show(ch)}; use only letters, "
                              "digits, spaces, hyphens, apostrophes and periods")
    words = text.split(" ")
    if len(words) > MAX_NAME_WORDS:
        raise InvalidName(f"the name {show(text)} has {len(words)} words; use 1 to "
                          f"{MAX_NAME_WORDS} words, {_EXAMPLE}")
    for word in words:
        if not any(unicodedata.category(ch)[0] == "L" or unicodedata.category(ch) == "Nd"
                   for ch in word):
            raise InvalidName(f"the name {show(text)} has a word without letters ({show(word)})")
    if not any(unicodedata.category(ch)[0] == "L" for ch in text):
        raise InvalidName(f"the name {show(text)} has no letters; {_EXAMPLE} or 'Agent 47'")
    return text


def name_key(name: str) -> str:
    """The key names are compared by: NFKC, single spaces, casefolded, ’ read as '.

    Works on any string (no validation), so lookups of bad names simply find nothing.
    """
    text = " ".join(unicodedata.normalize("NFKC", name).split())
    return text.replace("’", "'").casefold()


class InvalidDescription(LibraryError):
    """A character description that is too long or holds markup or control characters."""


#: Characters refused in a description and in imported metadata: markup and entity syntax
#: (both are shown in the page).
DESCRIPTION_MARKUP = frozenset("<>&`")


def refused_character(text: str) -> str | None:
    """The first markup (``DESCRIPTION_MARKUP``) or non-printable character in ``text``, or None."""
    return next((ch for ch in text if ch in DESCRIPTION_MARKUP or not ch.isprintable()), None)


def clean_description(description: object) -> str:
    """A character's description ("short grey hair, red scarf") as stored: NFKC-normalised,
    whitespace runs (newlines too) made one space; "" for None or blank.

    Raises:
        InvalidDescription: not text, longer than ``description_chars`` (configs/limits.yaml),
            or holding ``< > & ``` or other non-printable characters.
    """
    if description is None:
        return ""
    if not isinstance(description, str):
        raise InvalidDescription(f"a description must be text, not {type(description).__name__}")
    text = " ".join(unicodedata.normalize("NFKC", description).split())
    limits = load_limits()
    if len(text) > limits.description_chars:
        raise InvalidDescription(limits.refusal(f"the description ({len(text):,} characters)",
                                                "description_chars"))
    bad = refused_character(text)
    if bad is not None:
        raise InvalidDescription(f"the description contains {show(bad)}; markup and control "
                                 "characters are not accepted")
    return text


def parse_pronouns(pronouns: str | None) -> str:
    """Normalise pronouns to "he", "she", "they", or "" when none are given.

    Accepts forms like "she", "She/Her", "he/him/his", "they/them"; with several sets
    ("she/they") the first one wins.

    Raises:
        InvalidPronouns: for anything else.
    """
    if pronouns is None:
        return ""
    if not isinstance(pronouns, str):
        raise InvalidPronouns(f"pronouns must be text, not {type(pronouns).__name__}")
    parts = [p for p in re.split(r"[\s/,;]+", pronouns.strip().casefold()) if p]
    if not parts:
        return ""
    mapped = [PRONOUN_CLASS_OF.get(p) for p in parts]
    if None in mapped:
        raise InvalidPronouns(f"unknown pronouns {show(pronouns)}; use he, she or they "
                              "(or leave them empty)")
    return mapped[0]  # type: ignore[return-value]


__all__ = ["InvalidDescription", "InvalidName", "clean_description", "InvalidPronouns", "LibraryError", "MAX_NAME_LENGTH", "MAX_NAME_WORDS",
           "PRONOUNS", "PRONOUN_CLASS_OF", "name_key", "one_line", "parse_pronouns", "printable", "show",
           "validate_name"]
