"""Who owns identities and comics on a shared server, and where each owner's data lives.

Two modes:

* **single-user** (the default locally): one owner, :data:`LOCAL`; the identity library is the
  ``--library`` folder itself, laid out exactly as before.
* **multi-user** (``--multi-user``, the default on a Hugging Face Space): every visitor is an
  :class:`Owner` with a private library; shipped examples stay shared and read-only. On a Space
  the owner is the Hugging Face login (``hf:<username>``); locally it is a random key kept in the
  browser (``key:<32 hex digits>``).

Owner keys come from browsers and are validated here (:func:`owner_from_key`,
:func:`owner_from_username`, :func:`parse_owner`); they never become paths. An owner's folder
name is ``u`` + the first 32 hex digits of the SHA-256 of its id, so nothing typed by a visitor
reaches the file system.

Layout of the data root (``--library``; on a Space with a ``/data`` folder, ``/data/embeddings``
unless ``--library`` is given)::

    <root>/
      comic-identity.sqlite3         # jobs and saved comics (serving.store), WAL mode; browser
                                     # keys only as an HMAC
      comic-identity-secrets.json    # the server's HMAC secrets (serving.server_secrets), 0600
      <identity folders>             # single-user: the library itself, as before
      users/u<hash>/<identity ...>   # multi-user: one private library per owner
      comics/u<hash>/<comic id>/     # saved comics, per owner (both modes)
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from identities.catalog import EXAMPLES_DIR, IdentityCatalog
from identities.library import IdentityLibrary
from identities.names import LibraryError

#: Sub-folders of the data root that are not identities (see the module docstring).
USERS_FOLDER = "users"
COMICS_FOLDER = "comics"
#: A browser's owner key: 128 random bits as 32 lowercase hex digits.
KEY_PATTERN = re.compile(r"[0-9a-f]{32}")
#: An owner's folder name: ``u`` + 32 hex digits (:attr:`Owner.folder`).
OWNER_FOLDER = re.compile(r"u[0-9a-f]{32}")
#: A Hugging Face user name: letters, digits, '-', '_', '.', not starting with punctuation.
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
#: Where a Hugging Face Space keeps files across restarts (persistent storage).
SPACE_DATA_DIR = Path("/data")


class InvalidOwner(LibraryError):
    """An owner key or user name that is not well formed (one-line message)."""


class NotSignedIn(LibraryError):
    """A multi-user action without an owner (on a Space: not logged in with Hugging Face)."""


@dataclass(frozen=True)
class Owner:
    """The owner of a library and of saved comics.

    Attributes:
        id: ``"local"`` (single-user), ``"key:<32 hex>"`` (a browser) or ``"hf:<username>"``.
        label: how the page names the owner ("this browser", the HF user name).
    """

    id: str
    label: str = ""

    @property
    def folder(self) -> str:
        """The owner's folder name: ``u`` + 32 hex digits of SHA-256(id); never the raw id."""
        return "u" + hashlib.sha256(self.id.encode("utf-8")).hexdigest()[:32]


#: The one owner of single-user mode.
LOCAL = Owner("local", "this computer")


def new_key() -> str:
    """A fresh browser owner key (32 hex digits, 128 random bits)."""
    return secrets.token_hex(16)


def owner_from_key(key: Any) -> Owner:
    """The owner for a browser key.

    Raises:
        InvalidOwner: not 32 lowercase hex digits.
    """
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise InvalidOwner("the browser's owner key is not valid; reload the page to get a new one")
    return Owner(f"key:{key}", "this browser")


def owner_from_username(username: Any) -> Owner:
    """The owner for a Hugging Face user name (from ``gr.OAuthProfile.username``).

    Raises:
        InvalidOwner: not a well-formed user name.
    """
    if not isinstance(username, str) or not USERNAME_PATTERN.fullmatch(username) \
            or ".." in username:
        raise InvalidOwner("the Hugging Face user name is not valid; log in again")
    return Owner(f"hf:{username}", username)


def parse_owner(owner_id: Any) -> Owner:
    """An owner from its stored id (``local``, ``key:...`` or ``hf:...``), validated again.

    Raises:
        InvalidOwner: anything else.
    """
    if owner_id == LOCAL.id:
        return LOCAL
    if isinstance(owner_id, str) and owner_id.startswith("key:"):
        return owner_from_key(owner_id[4:])
    if isinstance(owner_id, str) and owner_id.startswith("hf:"):
        return owner_from_username(owner_id[3:])
    raise InvalidOwner(f"unknown owner id {str(owner_id)[:20]!r}")


def resolve_owner(*, multi_user: bool, login: bool, browser_key: Any,
                  username: str | None) -> tuple[Owner | None, str]:
    """Who a page visit belongs to, and the key its browser should keep.

    * single-user: (:data:`LOCAL`, the browser's key unchanged, "" when none);
    * multi-user with ``login`` (a Space): the Hugging Face ``username`` (None: not logged in);
      the browser key is ignored, so nobody can claim an owner by sending a key;
    * multi-user without login: the browser's key when it is valid, otherwise a new key.
    """
    kept = browser_key if isinstance(browser_key, str) else ""
    if not multi_user:
        return LOCAL, kept
    if login:
        return (owner_from_username(username) if username else None), kept
    try:
        return owner_from_key(browser_key), kept
    except InvalidOwner:
        key = new_key()
        return owner_from_key(key), key


def on_space(env: Mapping[str, str] | None = None) -> bool:
    """Whether the app runs as a Hugging Face Space (``SPACE_ID`` is set)."""
    return bool((os.environ if env is None else env).get("SPACE_ID"))


def data_root(library: str | os.PathLike | None, default: str | os.PathLike, *, space: bool,
              space_data: Path = SPACE_DATA_DIR) -> Path:
    """The data root: ``library`` when given; on a Space with persistent storage
    ``<space_data>/embeddings``; else ``default`` (the preset's ``library_dir``)."""
    if library:
        return Path(library)
    if space and space_data.is_dir():
        return space_data / "embeddings"
    return Path(default)


class Workspace:
    """Where each owner's library and saved comics live, and the shared examples.

    Args:
        root: the data root (see the module docstring).
        multi_user: private libraries per owner (True) or the single library at ``root``.
        examples_dir: shipped read-only identities shared by everybody (missing is fine).
    """

    def __init__(self, root: str | os.PathLike, *, multi_user: bool = False,
                 examples_dir: str | os.PathLike | None = EXAMPLES_DIR) -> None:
        self.root = Path(root)
        self.multi_user = multi_user
        self.examples_dir = Path(examples_dir) if examples_dir is not None else None

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r}, multi_user={self.multi_user})"

    def _check(self, owner: Owner | None) -> Owner:
        if owner is None:
            raise NotSignedIn("log in with Hugging Face (button at the top) to keep identities "
                              "and comics of your own")
        if not isinstance(owner, Owner):
            raise InvalidOwner("the owner is not valid")
        if self.multi_user and owner.id == LOCAL.id:
            raise InvalidOwner("the single-user library is not used in multi-user mode")
        if not self.multi_user and owner.id != LOCAL.id:
            raise InvalidOwner("a multi-user owner is not used in single-user mode")
        return parse_owner(owner.id)  # validated again: ids are the only thing used

    def library(self, owner: Owner | None) -> IdentityLibrary:
        """The owner's identity library (``root`` itself in single-user mode).

        Raises:
            NotSignedIn: ``owner`` is None (multi-user without a login).
            InvalidOwner: a malformed owner, or one of the other mode.
        """
        owner = self._check(owner)
        if not self.multi_user:
            return IdentityLibrary(self.root)
        return IdentityLibrary(self.root / USERS_FOLDER / owner.folder)

    def catalog(self, owner: Owner | None) -> IdentityCatalog:
        """The owner's library plus the shared examples; with no owner, the examples alone."""
        library = self.library(owner) if owner is not None else None
        return IdentityCatalog(library, self.examples_dir)

    def library_in(self, folder: str) -> IdentityLibrary:
        """The library of the owner whose folder name is ``folder`` (``u`` + 32 hex digits), as
        a job stored with a hashed owner id finds it after a restart.

        Raises:
            InvalidOwner: a malformed folder name, or one of the other mode.
        """
        if not isinstance(folder, str) or not OWNER_FOLDER.fullmatch(folder):
            raise InvalidOwner("the owner is not valid")
        if self.multi_user and folder == LOCAL.folder:
            raise InvalidOwner("the single-user library is not used in multi-user mode")
        if not self.multi_user and folder != LOCAL.folder:
            raise InvalidOwner("a multi-user owner is not used in single-user mode")
        if not self.multi_user:
            return IdentityLibrary(self.root)
        return IdentityLibrary(self.root / USERS_FOLDER / folder)

    def comics_dir(self, owner: Owner) -> Path:
        """The folder of the owner's saved comics (created on the first save)."""
        return self.root / COMICS_FOLDER / self._check(owner).folder


__all__ = ["COMICS_FOLDER", "InvalidOwner", "LOCAL", "NotSignedIn", "OWNER_FOLDER", "Owner", "USERS_FOLDER",
           "Workspace", "data_root", "new_key", "on_space", "owner_from_key",
           "owner_from_username", "parse_owner", "resolve_owner"]
