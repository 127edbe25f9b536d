"""The identities the app offers: the user's library plus, read-only, the shipped examples.

The user's library (``--library DIR``, default ``embeddings/``; in multi-user mode one per owner,
see :mod:`identities.owners`) is read and written by
:class:`~identities.library.IdentityLibrary`. Shipped examples live in the repository's
``embeddings/examples/`` folder (same layout, one folder per identity) and are never written by
the app. When a name exists in both, the user's identity wins. A catalog without a library (a
visitor who is not signed in) offers the examples alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from identities.library import Identity, IdentityLibrary, IdentityNotFound, LibraryProblem
from identities.names import LibraryError, name_key, show

#: Where the repository ships example identities.
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "embeddings" / "examples"

Source = Literal["library", "example"]


class ReadOnlyIdentity(LibraryError):
    """An attempt to change a shipped example identity."""


@dataclass(frozen=True)
class CatalogEntry:
    """One identity as shown in the app's library view.

    Attributes:
        identity: the stored identity (name, pronouns, vectors, folder).
        source: ``"library"`` (the user's, deletable) or ``"example"`` (shipped, read-only).
    """

    identity: Identity
    source: Source

    @property
    def name(self) -> str:
        return self.identity.name

    @property
    def read_only(self) -> bool:
        return self.source == "example"

    def caption(self) -> str:
        """``"Ada Lovelace (she)"``, with `` · example`` for shipped identities."""
        pronouns = f" ({self.identity.pronouns})" if self.identity.pronouns else ""
        return f"{self.name}{pronouns}" + (" · example" if self.read_only else "")


class IdentityCatalog:
    """The user's :class:`IdentityLibrary` and the read-only examples, looked up as one.

    Args:
        library: the user's library (written by training and deletion), or None: examples only.
        examples_dir: folder of shipped examples; missing or empty is fine.
    """

    def __init__(self, library: IdentityLibrary | None,
                 examples_dir: str | os.PathLike | None = EXAMPLES_DIR) -> None:
        self.library = library
        examples = Path(examples_dir) if examples_dir is not None else None
        same = examples is not None and library is not None and \
            examples.resolve() == library.root.resolve()
        self.examples = IdentityLibrary(examples) if examples is not None and not same else None

    def entries(self) -> list[CatalogEntry]:
        """The user's identities, then the examples whose names the user has not taken."""
        mine = [CatalogEntry(i, "library") for i in self.library.list()] \
            if self.library is not None else []
        taken = {name_key(e.name) for e in mine}
        shipped = []
        if self.examples is not None and self.examples.root.is_dir():
            shipped = [CatalogEntry(i, "example") for i in self.examples.list()
                       if name_key(i.name) not in taken]
        return mine + shipped

    def problems(self) -> list[LibraryProblem]:
        """Unreadable folders of the user's library (examples are the repository's concern)."""
        return self.library.problems() if self.library is not None else []

    def names(self) -> list[str]:
        return [entry.name for entry in self.entries()]

    def find(self, name: str) -> CatalogEntry:
        """The entry called ``name`` (case-insensitive); the user's library first.

        Raises:
            IdentityNotFound: in neither place (the message lists a few known names).
            LibraryError: the user's entry of that name is damaged.
        """
        if self.library is not None and name in self.library:
            return CatalogEntry(self.library.get(name), "library")
        if self.examples is not None and self.examples.root.is_dir() and name in self.examples:
            return CatalogEntry(self.examples.get(name), "example")
        known = self.names()
        hint = f" (known: {', '.join(known[:5])}{', …' if len(known) > 5 else ''})" if known \
            else " (the library is empty)"
        raise IdentityNotFound(f"no identity named {show(str(name))} in the library{hint}")

    def get(self, name: str) -> Identity:
        """The identity called ``name`` (see :meth:`find`); satisfies ``IdentitySource``."""
        return self.find(name).identity

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.find(name)
        except LibraryError:
            return False
        return True

    def delete(self, name: str) -> None:
        """Delete the user's identity ``name``.

        Raises:
            ReadOnlyIdentity: ``name`` is a shipped example.
            IdentityNotFound: no such identity.
        """
        entry = self.find(name)
        if entry.read_only:
            raise ReadOnlyIdentity(f"{show(entry.name)} is a shipped example and cannot be deleted")
        assert self.library is not None  # an entry not read-only comes from the library
        self.library.delete(entry.name)

    def describe(self, name: str, description: str) -> Identity:
        """Store the description of the user's identity ``name`` ("" clears it).

        Raises:
            ReadOnlyIdentity: ``name`` is a shipped example (describe it per comic instead).
            IdentityNotFound, InvalidDescription, LibraryError.
        """
        entry = self.find(name)
        if entry.read_only:
            raise ReadOnlyIdentity(f"{show(entry.name)} is a shipped example: its description "
                                   "can only be set for this comic")
        assert self.library is not None
        return self.library.describe(entry.name, description)


__all__ = ["CatalogEntry", "EXAMPLES_DIR", "IdentityCatalog", "ReadOnlyIdentity"]
