"""My comics: each owner's saved comics, on disk and in the database, never half saved.

A saved comic is a folder ``<data root>/comics/<owner folder>/<comic id>/`` holding what
:func:`pipelines.export.export_comic` wrote for the download list (``page_N.png``, ``comic.pdf``, ``comic.cbz``,
``project.json``, ``comic.zip``) and a ``comic.json`` sidecar (``id``, ``owner``, ``title``,
``created``: what its row says, so the row can be written again), plus a row in the ``comics``
table of :class:`~serving.store.Store` (title, page count, dates, status, the owner's folder).
Only rows with status ``saved`` whose folder exists are listed; an owner's comics are found by
the owner's folder name (:attr:`identities.owners.Owner.folder`).

Crash safety (``kill -9`` at any moment):

* **save**: the row is written first as ``saving`` (never listed), the files are copied into a
  hidden ``.tmp.<id>`` folder and flushed, the folder is renamed into place, then the row becomes
  ``saved``. Saving again over a comic (after a redraw) moves the old folder aside, renames the
  new one in and only then drops the old one.
* **delete**: the row becomes ``deleting`` (no longer listed), the folder is renamed to
  ``.del.<id>`` and removed, then the row is dropped.
* :meth:`ComicShelf.recover` (at start-up) finishes or undoes whatever a crash cut short: a
  ``saving`` row whose folder is in place becomes ``saved`` (every file was written before the
  rename), one without is dropped; ``deleting`` rows are deleted; hidden leftovers are removed
  (a moved-aside old version is put back when its replacement never arrived).
* **a lost database** (deleted, emptied, damaged, or a damaged ``-wal``): the store starts a new
  one (a damaged file is kept aside, :class:`~serving.store.Store`), and :meth:`ComicShelf.recover`
  gives every comic folder without a row its row back: title and date from ``comic.json`` (or
  ``project.json``'s title and the folder's time when the sidecar is missing or unreadable),
  pages counted, status ``saved``. A folder is never removed because it has no row.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from configs import load_limits
from core.crash import crash_point
from core.safe_read import ReadRefused, loads_json, read_capped
from identities.names import LibraryError
from identities.owners import COMICS_FOLDER, OWNER_FOLDER, Owner, Workspace
from serving.store import ComicRecord, Store

logger = logging.getLogger(__name__)

COMIC_ID = re.compile(r"[0-9a-f]{16}")
#: The sidecar in each saved comic's folder: what its database row says (for a rebuild).
SIDECAR = "comic.json"
#: The files of an export kept in a saved comic (pages are ``page_N.png``).
KEPT_FILES = ("comic.pdf", "comic.cbz", "project.json", "comic.zip")
_TMP, _OLD, _DEL = ".tmp.", ".old.", ".del."
UNTITLED = "Untitled comic"


class ComicNotFound(LibraryError):
    """No saved comic with that id belongs to the asking owner."""


@dataclass(frozen=True)
class SavedComic:
    """One saved comic of an owner.

    Attributes:
        id: 16 hex digits. folder: its files. pages: ``page_N.png`` paths in page order.
        created/updated: Unix seconds (UTC).
    """

    id: str
    title: str
    created: float
    updated: float
    folder: Path
    pages: tuple[Path, ...]

    @property
    def summary(self) -> tuple[int, tuple[str, ...]]:
        """(panel count, cast names) from the comic's ``project.json``; ``(0, ())`` when that
        file is missing or damaged (the entry is still listed, and opening it says why)."""
        try:
            data = json.loads((self.folder / "project.json").read_text(encoding="utf-8"))
            panels = data.get("panels") if isinstance(data, dict) else None
            cast = data.get("cast") if isinstance(data, dict) else None
            count = len(panels) if isinstance(panels, list) else 0
            names = tuple(str(n) for n in cast if isinstance(n, str)) \
                if isinstance(cast, list) else ()
            return count, names
        except (OSError, ValueError):
            return 0, ()

    @property
    def files(self) -> list[Path]:
        """Pages, PDF, CBZ, project.json and comic.zip (those present), for a download list."""
        return [*self.pages, *(p for p in (self.folder / f for f in KEPT_FILES) if p.is_file())]

    @property
    def zip(self) -> Path:
        return self.folder / "comic.zip"

    @property
    def thumbnail(self) -> Path | None:
        """The first page, or None for a comic without pages."""
        return self.pages[0] if self.pages else None

    def caption(self) -> str:
        """``"Title · 2026-12-03 10:42 UTC · 4 panels · Ada Lovelace, Grace Hopper"`` (the time
        of the last save; panels and cast from ``project.json`` when it can be read)."""
        when = datetime.fromtimestamp(self.updated, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        panels, cast = self.summary
        parts = [self.title or UNTITLED, when]
        if panels:
            parts.append(f"{panels} panel{'s' if panels != 1 else ''}")
        if cast:
            parts.append(", ".join(cast))
        return " · ".join(parts)


def _page_number(path: Path) -> int:
    match = re.fullmatch(r"page_(\d+)\.png", path.name)
    return int(match.group(1)) if match else 0


def check_comic_id(comic_id: object) -> str:
    """``comic_id`` when it is 16 hex digits (it names a folder), else :class:`ComicNotFound`."""
    if not isinstance(comic_id, str) or not COMIC_ID.fullmatch(comic_id):
        if comic_id is None or (isinstance(comic_id, str) and not comic_id.strip()):
            raise ComicNotFound("no comic is selected: click a comic's thumbnail first")
        raise ComicNotFound(f"no saved comic {str(comic_id)[:20]!r}")
    return comic_id


class ComicShelf:
    """Save, list, open and delete owners' comics (see the module docstring).

    Args:
        store: the app's database. workspace: where each owner's comics folder is.
    """

    def __init__(self, store: Store, workspace: Workspace) -> None:
        self.store = store
        self.workspace = workspace

    def _folder(self, record: ComicRecord) -> Path:
        # by the folder name alone: rows of the other mode keep their folders too (a row without
        # a well-formed folder, which a migrated database has none of: by its owner id's hash)
        well_formed = OWNER_FOLDER.fullmatch(record.folder)
        folder = record.folder if well_formed else Owner(record.owner).folder
        return self.workspace.root / COMICS_FOLDER / folder / record.id

    def _saved(self, record: ComicRecord) -> SavedComic | None:
        folder = self._folder(record)
        if not folder.is_dir():
            return None
        pages = tuple(sorted(folder.glob("page_*.png"), key=_page_number))
        return SavedComic(id=record.id, title=record.title, created=record.created,
                          updated=record.updated, folder=folder, pages=pages)

    # ------------------------------------------------------------------ reading

    def list(self, owner: Owner) -> list[SavedComic]:
        """The owner's saved comics, newest first."""
        comics = (self._saved(r) for r in self.store.comics(folder=owner.folder))
        return [c for c in comics if c is not None]

    def get(self, owner: Owner, comic_id: object) -> SavedComic:
        """The owner's saved comic ``comic_id``.

        Raises:
            ComicNotFound: malformed id, unknown, being saved or deleted, or another owner's.
        """
        record = self.store.comic(check_comic_id(comic_id))
        saved = self._saved(record) if record is not None and record.folder == owner.folder \
            and record.status == "saved" else None
        if saved is None:
            raise ComicNotFound("that comic is not among your saved comics (deleted?)")
        return saved

    # ------------------------------------------------------------------ writing

    def save(self, owner: Owner, title: str, files: list[str | Path],
             comic_id: str | None = None) -> SavedComic:
        """Save (or, with the owner's ``comic_id``, replace) a comic from its exported files.

        Args:
            files: paths written by ``export_comic``; ``page_N.png`` and the kept files
                (PDF, CBZ, project.json, comic.zip) are copied, panels are not.
        Raises:
            ComicNotFound: ``comic_id`` is not the owner's. LibraryError: a disk error.
        """
        wanted = [Path(f) for f in files
                  if Path(f).name in KEPT_FILES or re.fullmatch(r"page_\d+\.png", Path(f).name)]
        pages = sum(1 for f in wanted if f.name.startswith("page_"))
        title = " ".join((title or "").split())[:200]
        if comic_id is not None:
            self.get(owner, comic_id)  # the owner's, and saved
        else:
            comic_id = uuid.uuid4().hex[:16]
            self.store.begin_comic(comic_id, owner.id, title, owner.folder)
        record = self.store.comic(comic_id)
        sidecar = {"id": comic_id, "owner": self.store.owner_ref(owner.id), "title": title,
                   "created": record.created if record is not None else time.time()}
        root = self.workspace.comics_dir(owner)
        dest, staged = root / comic_id, root / f"{_TMP}{comic_id}"
        try:
            root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(staged, ignore_errors=True)
            staged.mkdir()
            for source in wanted:
                shutil.copyfile(source, staged / source.name)
            (staged / SIDECAR).write_text(json.dumps(sidecar), encoding="utf-8")
            crash_point("comic-save")
            if dest.exists():
                aside = root / f"{_OLD}{comic_id}"
                shutil.rmtree(aside, ignore_errors=True)
                dest.rename(aside)
                staged.rename(dest)
                shutil.rmtree(aside, ignore_errors=True)
            else:
                staged.rename(dest)
        except OSError as exc:
            shutil.rmtree(staged, ignore_errors=True)
            raise LibraryError(f"cannot save the comic: {exc.strerror or exc}") from None
        self.store.comic_saved(comic_id, title, pages)
        return self.get(owner, comic_id)

    def rename(self, owner: Owner, comic_id: object, title: str) -> SavedComic:
        """Give the owner's saved comic a new title (spaces collapsed, at most 200 characters;
        blank: "Untitled comic").

        Raises:
            ComicNotFound: not the owner's (or unknown).
        """
        saved = self.get(owner, comic_id)
        self.store.rename_comic(saved.id, " ".join(str(title or "").split())[:200])
        return self.get(owner, saved.id)

    def delete(self, owner: Owner, comic_id: object) -> None:
        """Delete the owner's saved comic (its row stops being listed first).

        Raises:
            ComicNotFound: not the owner's (or unknown).
        """
        saved = self.get(owner, comic_id)
        self.store.set_comic_status(saved.id, "deleting")
        crash_point("comic-delete")
        self._remove(saved.folder)
        self.store.forget_comic(saved.id)

    @staticmethod
    def _remove(folder: Path) -> None:
        if folder.exists():
            trash = folder.with_name(f"{_DEL}{folder.name}")
            shutil.rmtree(trash, ignore_errors=True)
            folder.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)

    def recover(self) -> int:
        """At start-up: finish or undo what a crash cut short, and give every comic folder
        without a row its row back (see the module docstring). Returns how many were adopted."""
        base = self.workspace.root / COMICS_FOLDER
        for owner_dir in self._owner_dirs(base):
            for child in list(owner_dir.iterdir()):
                if child.name.startswith(_OLD):
                    original = child.with_name(child.name[len(_OLD):])
                    if original.exists():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.rename(original)
                elif child.name.startswith((_TMP, _DEL)):
                    shutil.rmtree(child, ignore_errors=True)
        known = set()
        for record in self.store.comics(status=None):
            folder = self._folder(record)
            if record.status == "saving" and folder.is_dir():
                pages = sum(1 for _ in folder.glob("page_*.png"))
                self.store.comic_saved(record.id, record.title, pages)
            elif record.status in ("saving", "deleting"):
                self._remove(folder)
                self.store.forget_comic(record.id)
                continue
            known.add(folder)
        adopted = 0
        for owner_dir in self._owner_dirs(base):
            for child in sorted(owner_dir.iterdir()):
                if child.is_dir() and COMIC_ID.fullmatch(child.name) and child not in known:
                    self.store.adopt_comic(self._found(owner_dir.name, child))
                    adopted += 1
        if adopted:
            logger.warning("%d saved comics had no database row; their rows were rebuilt from "
                           "their folders", adopted)
        self.store.settle_wal_copy(rows_lost=adopted > 0)
        return adopted

    @staticmethod
    def _owner_dirs(base: Path) -> list[Path]:
        if not base.is_dir():
            return []
        return [d for d in base.iterdir() if d.is_dir() and OWNER_FOLDER.fullmatch(d.name)]

    @staticmethod
    def _found(owner_folder: str, folder: Path) -> ComicRecord:
        """The row of a comic folder found without one: from its sidecar, else from its
        project.json's title and the folder's time (anything unreadable is left blank)."""
        limits = load_limits()
        meta: dict = {}
        for name in (SIDECAR, "project.json"):
            try:
                data = loads_json(read_capped(folder / name, limits.json_bytes, name,
                                              "json_bytes", limits), name, limits)
            except (OSError, ReadRefused):
                continue
            if isinstance(data, dict):
                meta = data if name == SIDECAR else {"title": data.get("title")}
                break
        title = meta.get("title") if isinstance(meta.get("title"), str) else ""
        owner = meta.get("owner") if isinstance(meta.get("owner"), str) else ""
        created = meta.get("created")
        if not isinstance(created, (int, float)) or isinstance(created, bool):
            created = folder.stat().st_mtime
        pages = sum(1 for _ in folder.glob("page_*.png"))
        return ComicRecord(id=folder.name, owner=owner[:200], title=" ".join(title.split())[:200],
                           pages=pages, status="saved", created=float(created),
                           updated=folder.stat().st_mtime, folder=owner_folder)


__all__ = ["ComicNotFound", "ComicShelf", "SavedComic", "check_comic_id"]
