"""The app's per-run temporary folder: created at start, removed at exit, found again if killed.

Everything the web app writes for its visitors lives in one folder per process,
``$TMPDIR/comic-identity-run-XXXXXXXX/``:

* ``uploads/`` — Gradio's cache (``GRADIO_TEMP_DIR``): uploaded photos and projects, and the copies
  of the files it serves;
* ``downloads/<session>/`` — each session's comic (pages, PDF, ``comic.zip`` with the cast's learned
  vectors, ``project.json``).

The folder holds an exclusive ``flock`` on its ``.lock`` file for the life of the process. The
kernel drops that lock however the process ends, so :func:`remove_stale` (run by
:func:`open_run_folder` at every start) removes exactly the folders of runs that were killed
(``SIGKILL``, power loss) and never one still in use. :meth:`RunFolder.remove` deletes the folder
on a normal exit, ``SIGINT`` and ``SIGTERM`` (see ``app.py``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no stale-folder detection
    fcntl = None  # type: ignore[assignment]

PREFIX = "comic-identity-run-"
LOCK = ".lock"
#: A folder younger than this is never called stale (its owner may be between mkdir and flock).
GRACE_S = 30.0


@dataclass
class RunFolder:
    """One process's temporary folder, locked while the process lives.

    Attributes:
        path: the folder; ``uploads`` and ``downloads`` are its sub-folders.
    """

    path: Path
    _lock: IO[bytes] | None = field(default=None, repr=False)

    @property
    def uploads(self) -> Path:
        return self.path / "uploads"

    @property
    def downloads(self) -> Path:
        return self.path / "downloads"

    def remove(self) -> None:
        """Delete the folder and everything in it, then release the lock (idempotent)."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def _is_abandoned(folder: Path, now: float) -> bool:
    """True when ``folder``'s lock can be taken: its process is gone."""
    lock_path = folder / LOCK
    try:
        if now - folder.stat().st_mtime < GRACE_S or not lock_path.is_file() or fcntl is None:
            return False
        with open(lock_path, "rb") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False  # held: its process is alive
            return True
    except OSError:
        return False


def remove_stale(parent: Path | None = None) -> list[Path]:
    """Remove the run folders under ``parent`` (default: the system temp folder) whose process
    is gone; returns what was removed. Folders without a lock file are left alone."""
    parent = Path(parent or tempfile.gettempdir())
    removed = []
    now = time.time()
    for folder in sorted(parent.glob(f"{PREFIX}*")):
        if folder.is_dir() and not folder.is_symlink() and _is_abandoned(folder, now):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def open_run_folder(parent: Path | None = None) -> RunFolder:
    """Remove stale run folders, then create and lock this process's one (mode 0700)."""
    remove_stale(parent)
    path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
    handle = open(path / LOCK, "wb")
    if fcntl is not None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    folder = RunFolder(path=path, _lock=handle)
    folder.uploads.mkdir()
    folder.downloads.mkdir()
    os.utime(path)
    return folder


__all__ = ["GRACE_S", "PREFIX", "RunFolder", "open_run_folder", "remove_stale"]
