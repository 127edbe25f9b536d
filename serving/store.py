"""Training jobs and saved comics recorded in SQLite, so a restart loses nothing.

One database file beside the identity library (``<data root>/comic-identity.sqlite3``, see
:mod:`identities.owners`), in WAL mode with ``synchronous=FULL``: a committed change survives
``kill -9``, and a change cut off mid-way is rolled back when the file is opened next. The
standard library's :mod:`sqlite3` on one connection shared by all threads behind a lock (Gradio
handlers run in a thread pool; every statement here is short). A forked child (ZeroGPU runs
handlers in one) opens a connection of its own: SQLite connections must not cross ``fork``.

Tables:

* ``jobs``: one row per training job: ``id``, ``owner`` (an :class:`~identities.owners.Owner`
  id), ``label``, ``name``, ``pronouns``, ``steps``, ``seed``, ``photo`` (the uploaded bytes,
  kept only while the job is queued or running), ``status`` (queued, running, done, failed,
  cancelled, interrupted), ``message``, ``step``/``total`` (the last progress written: at start
  and end), ``created``/``updated`` (Unix seconds).
* ``comics``: one row per saved comic: ``id``, ``owner``, ``title``, ``pages`` (count),
  ``created``/``updated`` (Unix seconds), ``status``: ``saving`` (files being written; never
  listed), ``saved``, ``deleting`` (being removed; never listed).
* ``settings``: ``key`` -> ``value`` (the secret that encrypts the browser's stored keys).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from identities.names import LibraryError

DB_FILE = "comic-identity.sqlite3"
SCHEMA_VERSION = 1
JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
COMIC_STATUSES = ("saving", "saved", "deleting")
INTERRUPTED_MESSAGE = ("the server restarted while this identity was training, so the training "
                       "stopped; press Train again to start over")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, label TEXT NOT NULL, name TEXT NOT NULL,
    pronouns TEXT NOT NULL, steps INTEGER NOT NULL, seed INTEGER, photo BLOB,
    status TEXT NOT NULL, message TEXT NOT NULL DEFAULT '', step INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, created);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE TABLE IF NOT EXISTS comics (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL, pages INTEGER NOT NULL,
    status TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS comics_owner ON comics (owner, created);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


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


def _job(row: sqlite3.Row) -> JobRecord:
    return JobRecord(id=row["id"], owner=row["owner"], label=row["label"], name=row["name"],
                     pronouns=row["pronouns"], steps=row["steps"], seed=row["seed"],
                     status=row["status"], message=row["message"], step=row["step"],
                     total=row["total"], created=row["created"],
                     photo=bytes(row["photo"]) if row["photo"] is not None else None)


def _comic(row: sqlite3.Row) -> ComicRecord:
    return ComicRecord(id=row["id"], owner=row["owner"], title=row["title"], pages=row["pages"],
                       status=row["status"], created=row["created"], updated=row["updated"])


class Store:
    """The app's database (see the module docstring); created on first use.

    Args:
        path: the database file (its folder is created).
    Raises:
        StoreError: the file cannot be opened, is not a database, or is newer than this program.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._connect()
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} was written by a newer version of this program "
                                 f"(schema {version}); update it")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the database {self.path}: {exc}") from None

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
                       "status, message, step, total, created, updated) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (job.id, job.owner, job.label, job.name, job.pronouns, job.steps, job.seed,
                        job.photo, job.status, job.message, job.step, job.total,
                        job.created or now, now))

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
                           "status, message, step, total, created FROM jobs WHERE owner = ? "
                           "ORDER BY created DESC LIMIT ?", (owner, limit))
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

    def begin_comic(self, comic_id: str, owner: str, title: str) -> None:
        """Record a comic whose files are about to be written (status ``saving``, not listed)."""
        now = time.time()
        with self._transaction() as db:
            db.execute("INSERT INTO comics (id, owner, title, pages, status, created, updated) "
                       "VALUES (?, ?, ?, 0, 'saving', ?, ?)", (comic_id, owner, title, now, now))

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

    def comics(self, owner: str | None = None, status: str | None = "saved") -> list[ComicRecord]:
        """Comics (of ``owner``, or everybody's with None) with ``status`` (None: any), newest
        first."""
        where, args = [], []
        if owner is not None:
            where.append("owner = ?")
            args.append(owner)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        sql = "SELECT * FROM comics" + (" WHERE " + " AND ".join(where) if where else "")
        return [_comic(r) for r in self._query(sql + " ORDER BY created DESC, id", tuple(args))]


__all__ = ["COMIC_STATUSES", "ComicRecord", "DB_FILE", "INTERRUPTED_MESSAGE", "JOB_STATUSES",
           "JobRecord", "Store", "StoreError"]
