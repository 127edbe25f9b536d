"""Characters of a story: a full name plus the pronouns the story uses for them.

A character is given as ``("Hugh Jackman", "he")``, as a :class:`Character`, or on the command
line as the spec ``"Hugh Jackman:he"``. Pronouns are written ``he``, ``she``, ``they`` or with
their object form (``he/him``, ``she/her``, ``they/them``); ``he/they`` gives both. Without
pronouns a character matches any pronoun (resolution then relies on recency alone).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from configs import load_limits
from llm.errors import StoryError
from identities.names import MAX_NAME_LENGTH, MAX_NAME_WORDS, PRONOUN_CLASS_OF, name_key, show
from identities.names import PRONOUNS as PRONOUN_CLASSES

#: Characters per story (``configs/limits.yaml``: ``cast``).
MAX_CHARACTERS = load_limits().cast

#: A name word: a letter or digit, then letters, digits, hyphens, apostrophes or periods
#: ("O'Brien", "Jean-Luc", "Jr.", "47"); a whole name needs at least one letter ("Agent 47").
_NAME_WORD = r"[^\W_](?:[^\W_]|['’.\-])*"
_NAME_RE = re.compile(rf"{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,{MAX_NAME_WORDS - 1}}}")

#: Name suffixes that never serve as a surname on their own.
_SUFFIXES = {"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"}


@dataclass(frozen=True)
class Character:
    """A story character.

    Attributes:
        name: the full name exactly as the identity library knows it ("Hugh Jackman").
        pronouns: the pronoun classes used for them, a subset of ("he", "she", "they");
            empty when unknown (then any pronoun may refer to them).
    """

    name: str
    pronouns: frozenset[str] = field(default_factory=frozenset)

    @property
    def words(self) -> list[str]:
        """The words of the full name."""
        return self.name.split()

    @property
    def first_name(self) -> str | None:
        """The first word of a name of two or more words, else None."""
        words = self.words
        return words[0] if len(words) > 1 else None

    @property
    def surname(self) -> str | None:
        """The last word that is not a suffix (Jr., III) of a name of two or more words."""
        words = [w for w in self.words[1:] if w.lower() not in _SUFFIXES and not w.isdigit()]
        return words[-1] if words else None

    def accepts(self, pronoun_class: str) -> bool:
        """Whether a pronoun of this class ("he", "she", "they") may refer to this character."""
        return not self.pronouns or pronoun_class in self.pronouns

    def spec(self) -> str:
        """The command-line spec of this character ("Hugh Jackman:he")."""
        pronouns = "/".join(p for p in PRONOUN_CLASSES if p in self.pronouns)
        return f"{self.name}:{pronouns}" if pronouns else self.name


CharacterLike = Character | str | Sequence[str]


def parse_pronouns(text: str | None, *, name: str = "") -> frozenset[str]:
    """Read a pronoun spec ("he", "she/her", "they/them", "he/they", "") into pronoun classes.

    Raises:
        StoryError: an unknown pronoun.
    """
    if text is None or not text.strip():
        return frozenset()
    classes = set()
    for word in re.split(r"[/,\s]+", text.strip().lower()):
        if not word:
            continue
        if word not in PRONOUN_CLASS_OF:
            who = f" for {name}" if name else ""
            raise StoryError(
                f"unknown pronoun {word!r}{who}: use he, she or they (or he/him, she/her, they/them)"
            )
        classes.add(PRONOUN_CLASS_OF[word])
    return frozenset(classes)


def validate_name(name: str) -> str:
    """Return ``name`` NFKC-normalised with single spaces, or raise :class:`StoryError`.

    A name is 1-4 words of letters, digits, hyphens, apostrophes and periods, each word starting
    with a letter or digit, with at least one letter ("Agent 47"), at most ``name_chars``
    (``configs/limits.yaml``) characters.
    """
    text = str(name)
    if len(text) > 4 * MAX_NAME_LENGTH:
        raise StoryError(f"a character name is too long ({len(text):,} characters; at most "
                         f"{MAX_NAME_LENGTH})")
    clean = " ".join(unicodedata.normalize("NFKC", text).split())
    if len(clean) > MAX_NAME_LENGTH:
        raise StoryError(f"the character name {show(clean)} is too long ({len(clean)} characters; "
                         f"at most {MAX_NAME_LENGTH})")
    if not clean:
        raise StoryError("a character name is empty: give a full name such as 'Hugh Jackman'")
    if not _NAME_RE.fullmatch(clean) or not re.search(r"[^\W\d_]", clean):
        raise StoryError(
            f"bad character name {clean!r}: use 1-{MAX_NAME_WORDS} words of letters, digits, "
            "hyphens, apostrophes or periods, such as 'Hugh Jackman' or 'Agent 47'"
        )
    return clean


def parse_character_spec(spec: str) -> Character:
    """Read a command-line character spec ``"First Last[:pronouns]"``.

    Raises:
        StoryError: an empty spec, a bad name or unknown pronouns.
    """
    if ":" in spec:
        name, pronouns = spec.rsplit(":", 1)
    else:
        name, pronouns = spec, ""
    clean = validate_name(name)
    return Character(clean, parse_pronouns(pronouns, name=clean))


def to_character(item: CharacterLike) -> Character:
    """Turn a :class:`Character`, a ``(name, pronouns)`` pair or a ``"Name[:pronouns]"`` spec into a Character."""
    if isinstance(item, Character):
        return Character(validate_name(item.name), frozenset(item.pronouns))
    if isinstance(item, str):
        return parse_character_spec(item)
    try:
        parts = list(item)
    except TypeError:
        raise StoryError(f"bad character {item!r}: give (full name, pronouns)") from None
    if len(parts) == 1:
        parts.append("")
    if len(parts) != 2 or not all(isinstance(p, str) or p is None for p in parts):
        raise StoryError(f"bad character {item!r}: give (full name, pronouns)")
    name = validate_name(parts[0] or "")
    return Character(name, parse_pronouns(parts[1], name=name))


def normalize_characters(characters: Iterable[CharacterLike] | None) -> list[Character]:
    """Validate a character list: at least one, at most :data:`MAX_CHARACTERS`, no duplicates.

    Raises:
        StoryError: no characters, too many, a bad entry or a name given twice.
    """
    if characters is None or isinstance(characters, (str, Character)):
        items: list[CharacterLike] = [] if characters is None else [characters]  # type: ignore[list-item]
    else:
        items = list(characters)
    if not items:
        raise StoryError("no characters given: name at least one, e.g. 'Hugh Jackman:he'")
    if len(items) > MAX_CHARACTERS:
        raise StoryError(f"too many characters ({len(items)}): at most {MAX_CHARACTERS}")
    result = [to_character(item) for item in items]
    seen: set[str] = set()
    for character in result:
        key = name_key(character.name)
        if key in seen:
            raise StoryError(f"character {character.name!r} is given twice")
        seen.add(key)
    return result
