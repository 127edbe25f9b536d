"""Training jobs and saved comics recorded in SQLite, so a restart loses nothing.

One database file beside the identity library (``<data root>/comic-identity.sqlite3``, see
:mod:`identities.owners`), in WAL mode with ``synchronous=FULL``: a committed change survives
``kill -9``, and a change cut off mid-way is rolled back when the file is opened next. The
standard library's :mod:`sqlite3` on one connection shared by all threads behind a lock (Gradio
handlers run in a thread pool; every statement here is short). A forked child (ZeroGPU runs
handlers in one) opens a connection of its own: SQLite connections must not cross ``fork``.

Tables:

* ``jobs``: one row per training job: ``id``, ``owner`` (an :class:`~identities.owners.Owner`
  id as stored, :meth:`Store.owner_ref`), ``folder`` (the owner's folder name), ``label``,
  ``name``, ``pronouns``, ``steps``, ``seed``, ``photo`` (the uploaded bytes, kept only while the
  job is queued or running), ``status`` (queued, running, done, failed, cancelled,
  interrupted), ``message``, ``step``/``total`` (the last progress written: at start and end),
  ``created``/``updated`` (Unix seconds).
* ``comics``: one row per saved comic: ``id``, ``owner`` (as stored), ``folder`` (the owner's
  folder name under ``comics/``, :attr:`identities.owners.Owner.folder`), ``title``, ``pages`` (count),
  ``created``/``updated`` (Unix seconds), ``status``: ``saving`` (files being written; never
  listed), ``saved``, ``deleting`` (being removed; never listed).
* ``settings``: ``key`` -> ``value`` (the secret that encrypts the browser's stored keys).

Owner ids are stored through :meth:`Store.owner_ref`: a browser's key (``key:<32 hex>``, which
signs a visitor in) only as ``key#`` + HMAC-SHA256 under the ``owner_keys`` secret of
:mod:`serving.server_secrets` (a file beside the database, not in it); Hugging Face logins and
``local`` as they are. Schema 2 (from 1: the ``folder`` columns, raw keys replaced by their HMAC,
the freed pages wiped) keeps every row.

The database is an index, not the only copy: every saved comic's folder holds its files and a
``comic.json`` sidecar (:mod:`serving.saved_comics`), so a database that is missing, empty or
damaged is rebuilt from the folders (:meth:`serving.saved_comics.ComicShelf.recover`). A file that
SQLite cannot read (or whose ``PRAGMA quick_check`` fails) is never deleted: it is renamed to
``<file>.damaged-<UTC time>`` (with its ``-wal``/``-shm``) and a new database is started. A
``-wal`` left by a killed server is copied aside before opening (:attr:`Store.wal_copy`): when
the comic folders then show that rows were lost (a damaged ``-wal`` is ignored by SQLite), the
copy is kept as ``<file>-wal.damaged-<UTC time>``, otherwise it is removed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from identities.names import LibraryError
from identities.owners import Owner
from serving.server_secrets import SECRETS_FILE, ServerSecrets

logger = logging.getLogger(__name__)

DB_FILE = "comic-identity.sqlite3"
SCHEMA_VERSION = 2
JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
COMIC_STATUSES = ("saving", "saved", "deleting")
INTERRUPTED_MESSAGE = ("the server restarted while this identity was training, so the training "
                       "stopped; press Train again to start over")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, label TEXT NOT NULL, name TEXT NOT NULL,
    pronouns TEXT NOT NULL, steps INTEGER NOT NULL, seed INTEGER, photo BLOB,
    status TEXT NOT NULL, message TEXT NOT NULL DEFAULT '', step INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, updated REAL NOT NULL,
    folder TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, created);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE TABLE IF NOT EXISTS comics (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL, pages INTEGER NOT NULL,
    status TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
    folder TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS comics_owner ON comics (owner, created);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_INDEXES = "CREATE INDEX IF NOT EXISTS comics_folder ON comics (folder, created);"


def _damaged(exc: sqlite3.Error) -> bool:
    """Whether SQLite's error says the file itself is unreadable (not a lock or a full disk)."""
    text = str(exc).lower()
    return any(word in text for word in ("not a database", "malformed", "corrupt"))


def owner_ref(owner_id: str, key: bytes) -> str:
    """How an owner id is stored: a browser key (``key:<hex>``) as ``key#`` + the first 32 hex
    digits of HMAC-SHA256(``key``, the hex); any other id unchanged."""
    if not owner_id.startswith("key:"):
        return owner_id
    digest = hmac.new(key, owner_id[4:].encode("utf-8"), hashlib.sha256).hexdigest()
    return "key#" + digest[:32]


def _migrate_to_2(db: sqlite3.Connection, key: bytes) -> None:
    """Schema 1 -> 2 (see the module docstring); each step can run again after a crash."""
    for table in ("jobs", "comics"):
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if "folder" not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN folder TEXT NOT NULL DEFAULT ''")
        db.execute("BEGIN IMMEDIATE")
        for row_id, owner in db.execute(f"SELECT id, owner FROM {table} "
                                        "WHERE folder = '' OR owner LIKE 'key:%'").fetchall():
            folder = Owner(owner).folder if not owner.startswith("key#") else ""
            db.execute(f"UPDATE {table} SET owner = ?, folder = CASE WHEN folder = '' THEN ? "
                       "ELSE folder END WHERE id = ?", (owner_ref(owner, key), folder, row_id))
        db.execute("COMMIT")
    db.execute("VACUUM")  # no raw key left in a free page
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # nor in the log


class StoreError(LibraryError):
    """The database cannot be opened or written (one-line message)."""


@dataclass(frozen=True)
class JobRecord:
    """One training job as stored (``photo`` is None once the job has ended, except for an
    interrupted job, which keeps it until it is trained again)."""

    id: str
    owner: str
    label: str
    name: str
    pronouns: str
    steps: int
    seed: int | None
    status: str
    message: str = ""
    step: int = 0
    total: int = 0
    created: float = 0.0
    photo: bytes | None = field(default=None, repr=False, compare=False)
    folder: str = ""

    @property
    def finished(self) -> bool:
        return self.status not in ("queued", "running")


@dataclass(frozen=True)
class ComicRecord:
    """One saved comic as stored (its files live in the owner's comics folder)."""

    id: str
    owner: str
    title: str
    pages: int
    status: str
    created: float
    updated: float
    folder: str = ""


def _job(row: sqlite3.Row) -> JobRecord:
    return JobRecord(id=row["id"], owner=row["owner"], label=row["label"], name=row["name"],
                     pronouns=row["pronouns"], steps=row["steps"], seed=row["seed"],
                     status=row["status"], message=row["message"], step=row["step"],
                     total=row["total"], created=row["created"],
                     photo=bytes(row["photo"]) if row["photo"] is not None else None,
                     folder=row["folder"])


def _comic(row: sqlite3.Row) -> ComicRecord:
    return ComicRecord(id=row["id"], owner=row["owner"], title=row["title"], pages=row["pages"],
                       status=row["status"], created=row["created"], updated=row["updated"],
                       folder=row["folder"])


class Store:
    """The app's database (see the module docstring); created on first use.

    Args:
        path: the database file (its folder is created).
        secrets_file: the server's secrets (default: :data:`~serving.server_secrets.SECRETS_FILE`
            beside ``path``).
    Attributes:
        set_aside: where a damaged database file was moved on opening (None: it was fine).
        wal_copy: a copy of the ``-wal`` a killed server left (None: there was none); see
            :meth:`settle_wal_copy`.
    Raises:
        StoreError: the file cannot be opened or set aside, or is newer than this program; the
            message says how to recover. SecretsError: the secrets file is unreadable.
    """

    def __init__(self, path: str | os.PathLike, secrets_file: ServerSecrets | None = None) -> None:
        self.path = Path(path)
        self.secrets = secrets_file or ServerSecrets(self.path.parent / SECRETS_FILE)
        self._owner_key = self.secrets.get("owner_keys")
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.set_aside: Path | None = None
        self.wal_copy: Path | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.wal_copy = self._copy_wal()
            try:
                self._db = self._open()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and not _damaged(exc):
                    raise
                self.set_aside = self._put_aside()
                self._db = self._open()
        except StoreError:
            self.settle_wal_copy(rows_lost=False)
            raise
        except (sqlite3.Error, OSError) as exc:
            self.settle_wal_copy(rows_lost=False)
            raise StoreError(f"cannot open the database {self.path}: {exc}; move it (and its -wal) "
                             "elsewhere and start again: saved comics are listed again from "
                             "their folders") from None

    def _open(self) -> sqlite3.Connection:
        """Connect, check the file (``quick_check``), create or migrate the tables."""
        db = self._connect()
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} was written by a newer version of this program "
                                 f"(schema {version}); update it")
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed ({check})")
            db.executescript(_SCHEMA)
            if 0 < version < 2:
                _migrate_to_2(db, self._owner_key)
            db.executescript(_INDEXES)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except BaseException:
            db.close()
            raise
        return db

    def _put_aside(self) -> Path:
        """Rename the damaged file (and its ``-wal``/``-shm``) to ``.damaged-<time>``; never
        deletes it. Returns the new name of the main file."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        for suffix in ("-wal", "-shm", ""):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                source.rename(Path(f"{aside}{suffix}"))
        logger.warning("the database %s was damaged; kept as %s, starting a new one that is "
                       "rebuilt from the comic folders", self.path, aside)
        return aside

    def _copy_wal(self) -> Path | None:
        wal = Path(f"{self.path}-wal")
        if not wal.is_file() or wal.stat().st_size == 0:
            return None
        copy = wal.with_name(f"{wal.name}.copy")
        shutil.copyfile(wal, copy)
        return copy

    def settle_wal_copy(self, rows_lost: bool) -> Path | None:
        """After the rebuild: keep the ``-wal`` copy as ``-wal.damaged-<time>`` when rows were
        lost (returns its path), else remove it."""
        copy, self.wal_copy = self.wal_copy, None
        if copy is None or not copy.exists():
            return None
        if not rows_lost:
            copy.unlink(missing_ok=True)
            return None
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        kept = copy.with_name(f"{self.path.name}-wal.damaged-{stamp}")
        copy.rename(kept)
        logger.warning("the database %s had lost rows (a damaged -wal?); its -wal is kept as %s",
                       self.path, kept)
        return kept

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False,
                             isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA secure_delete=ON")  # a dropped photo is overwritten, not left behind
        return db

    def _this_process(self) -> None:
        """After a ``fork``: a new lock and connection (the parent's are left untouched)."""
        if self._pid != os.getpid():
            self._lock = threading.Lock()
            self._db = self._connect()
            self._pid = os.getpid()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), rolled back on error."""
        self._this_process()
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write the database {self.path}: {exc}") from None

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        self._this_process()
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the database {self.path}: {exc}") from None

    def owner_ref(self, owner_id: str) -> str:
        """``owner_id`` as this store keeps it (:func:`owner_ref`; idempotent)."""
        return owner_ref(owner_id, self._owner_key)

    # ------------------------------------------------------------------ settings

    def secret(self, key: str) -> str:
        """A random secret stored under ``key``, made on first use and kept across restarts."""
        with self._transaction() as db:
            row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
            if row is not None:
                return row["value"]
            value = secrets.token_urlsafe(32)
            db.execute("INSERT INTO settings (key, value) VALUES (?, ?)", (key, value))
            return value

    # ------------------------------------------------------------------ jobs

    def add_job(self, job: JobRecord) -> None:
        """Record a new job (normally queued, with its photo)."""
        now = time.time()
        with self._transaction() as db:
            db.execute("INSERT INTO jobs (id, owner, label, name, pronouns, steps, seed, photo, "
                       "status, message, step, total, created, updated, folder) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (job.id, self.owner_ref(job.owner), job.label, job.name, job.pronouns, job.steps, job.seed,
                        job.photo, job.status, job.message, job.step, job.total,
                        job.created or now, now, job.folder or Owner(job.owner).folder))

    def set_job(self, job_id: str, status: str, message: str = "", step: int | None = None,
                total: int | None = None) -> None:
        """Record a job's new status (the photo is dropped once the job has ended; a job
        interrupted by a restart keeps it, see :meth:`recover_jobs`)."""
        if status not in JOB_STATUSES:
            raise ValueError(f"unknown job status {status!r}")
        ended = status not in ("queued", "running")
        with self._transaction() as db:
            db.execute("UPDATE jobs SET status = ?, message = ?, step = COALESCE(?, step), "
                       "total = COALESCE(?, total), updated = ?"
                       + (", photo = NULL" if ended else "") + " WHERE id = ?",
                       (status, message, step, total, time.time(), job_id))

    def drop_photo(self, job_id: str, message: str) -> None:
        """Forget an ended job's photo (an interrupted job's, once it is trained again)."""
        with self._transaction() as db:
            db.execute("UPDATE jobs SET photo = NULL, message = ?, updated = ? WHERE id = ?",
                       (message, time.time(), job_id))

    def retrainable(self, owner: str) -> list[str]:
        """The owner's interrupted jobs that still hold their photo, newest first."""
        rows = self._query("SELECT id FROM jobs WHERE owner = ? AND status = 'interrupted' AND "
                           "photo IS NOT NULL ORDER BY created DESC", (owner,))
        return [r["id"] for r in rows]

    def job(self, job_id: str) -> JobRecord | None:
        rows = self._query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def jobs(self, owner: str, limit: int = 20) -> list[JobRecord]:
        """The owner's newest ``limit`` jobs, newest first (photos not loaded)."""
        rows = self._query("SELECT id, owner, label, name, pronouns, steps, seed, NULL AS photo, "
                           "status, message, step, total, created, folder FROM jobs "
                           "WHERE owner = ? ORDER BY created DESC LIMIT ?",
                           (self.owner_ref(owner), limit))
        return [_job(r) for r in rows]

    def recover_jobs(self, message: str = INTERRUPTED_MESSAGE
                     ) -> tuple[list[JobRecord], list[JobRecord]]:
        """At start-up: mark the jobs that were running as interrupted (with ``message``).

        Returns:
            (the jobs just marked interrupted, the queued jobs with their photos to run again),
            each oldest first.
        """
        with self._transaction() as db:
            running = [_job(r) for r in db.execute(
                "SELECT * FROM jobs WHERE status = 'running' ORDER BY created").fetchall()]
            # the photo stays until the job is trained again (drop_photo), so that is one click
            db.execute("UPDATE jobs SET status = 'interrupted', message = ?, "
                       "updated = ? WHERE status = 'running'", (message, time.time()))
            queued = [_job(r) for r in db.execute(
                "SELECT * FROM jobs WHERE status = 'queued' ORDER BY created").fetchall()]
        interrupted = [JobRecord(**{**r.__dict__, "status": "interrupted", "message": message})
                       for r in running]
        return interrupted, queued

    # ------------------------------------------------------------------ comics

    def begin_comic(self, comic_id: str, owner: str, title: str, folder: str) -> None:
        """Record a comic whose files are about to be written (status ``saving``, not listed)
        in the owner's folder ``folder``."""
        now = time.time()
        with self._transaction() as db:
            db.execute("INSERT INTO comics (id, owner, title, pages, status, created, updated, "
                       "folder) VALUES (?, ?, ?, 0, 'saving', ?, ?, ?)",
                       (comic_id, self.owner_ref(owner), title, now, now, folder))

    def adopt_comic(self, record: ComicRecord) -> None:
        """Record a comic found on disk without a row (the rebuild after a lost database)."""
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO comics (id, owner, title, pages, status, created, "
                       "updated, folder) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (record.id, self.owner_ref(record.owner), record.title, record.pages, record.status,
                        record.created, record.updated, record.folder))

    def comic_saved(self, comic_id: str, title: str, pages: int) -> None:
        """Its files are in place: list it (status ``saved``)."""
        with self._transaction() as db:
            db.execute("UPDATE comics SET status = 'saved', title = ?, pages = ?, updated = ? "
                       "WHERE id = ?", (title, pages, time.time(), comic_id))

    def rename_comic(self, comic_id: str, title: str) -> None:
        """Give a saved comic a new title (its date stays: the pictures did not change)."""
        with self._transaction() as db:
            db.execute("UPDATE comics SET title = ? WHERE id = ?", (title, comic_id))

    def set_comic_status(self, comic_id: str, status: str) -> None:
        if status not in COMIC_STATUSES:
            raise ValueError(f"unknown comic status {status!r}")
        with self._transaction() as db:
            db.execute("UPDATE comics SET status = ?, updated = ? WHERE id = ?",
                       (status, time.time(), comic_id))

    def forget_comic(self, comic_id: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM comics WHERE id = ?", (comic_id,))

    def comic(self, comic_id: str) -> ComicRecord | None:
        rows = self._query("SELECT * FROM comics WHERE id = ?", (comic_id,))
        return _comic(rows[0]) if rows else None

    def comics(self, owner: str | None = None, status: str | None = "saved",
               folder: str | None = None) -> list[ComicRecord]:
        """Comics (of ``owner`` and/or in the owner folder ``folder``, or everybody's with None)
        with ``status`` (None: any), newest first."""
        where, args = [], []
        if owner is not None:
            where.append("owner = ?")
            args.append(self.owner_ref(owner))
        if folder is not None:
            where.append("folder = ?")
            args.append(folder)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        sql = "SELECT * FROM comics" + (" WHERE " + " AND ".join(where) if where else "")
        return [_comic(r) for r in self._query(sql + " ORDER BY created DESC, id", tuple(args))]


__all__ = ["COMIC_STATUSES", "ComicRecord", "DB_FILE", "INTERRUPTED_MESSAGE", "JOB_STATUSES",
           "JobRecord", "Store", "StoreError", "owner_ref"]
