"""Character descriptions in panel prompts: "Ada Lovelace waves." -> "Ada Lovelace (short grey
hair, red scarf) waves."

An identity keeps a face, not an outfit. Each character may carry a short description (stored in
the identity library, overridable per comic, saved in ``project.json`` as ``descriptions``);
:func:`describe` puts it into the panel sentence right after the character's first mention
(after a possessive "'s"), so the text encoders see it next to the character's signal words.
A character whose name the sentence does not contain gets nothing (the app already warns that it
will not appear). A sentence that already holds the description is left as it is.

The per-character prompts of several-character panels take the same mapping
(``descriptions: Mapping[name, text]``) and :func:`description_of`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from identities.names import name_key
from pipelines.binding import _name_pattern


def description_of(descriptions: Mapping[str, str], name: str) -> str:
    """The description of ``name`` in ``descriptions`` (names matched case- and
    spacing-insensitively), "" when it has none."""
    key = name_key(name)
    for stored, text in descriptions.items():
        if name_key(stored) == key:
            return " ".join(str(text).split())
    return ""


def describe(text: str, characters: Sequence[str], descriptions: Mapping[str, str]) -> str:
    """``text`` with each listed character's description after its first mention.

    Args:
        text: the panel sentence with real names.
        characters: the panel's characters (full names), in panel order.
        descriptions: name -> description ("" or missing: none).
    Returns:
        The sentence, e.g. "Ada Lovelace (short grey hair, red scarf) waves."; unchanged when no
        listed character has a description or is named.
    """
    for name in characters:
        description = description_of(descriptions, name)
        if not description or description.casefold() in text.casefold():
            continue
        pattern = re.compile(rf"(?<![\w'\u2019-]){_name_pattern(name)}(?:['\u2019]s\b|['\u2019])?(?![\w-])",
                             re.IGNORECASE)
        match = pattern.search(text)
        if match is None:
            continue
        text = f"{text[:match.end()]} ({description}){text[match.end():]}"
    return text


__all__ = ["describe", "description_of"]
