"""Where Comic Identity keeps its own cache, and how it writes files without leaving half of one.

``$COMIC_CACHE`` (default ``~/.cache/comic_identity``) holds the converted CLIP vocabulary,
facexlib weights and the celebrity-name statistics; Hugging Face weights stay in the HF cache.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def cache_dir(name: str) -> Path:
    """The cache sub-folder ``name`` under ``$COMIC_CACHE`` (or ``~/.cache/comic_identity``)."""
    root = os.environ.get("COMIC_CACHE") or Path.home() / ".cache" / "comic_identity"
    return Path(root) / name


#: Mode of the files written here: readable by everyone, writable by the owner (what ``open``
#: gives with the usual umask 022; ``mkstemp`` alone would leave 0600, unreadable by a ComfyUI,
#: web server or colleague running as another user).
FILE_MODE = 0o644


def write_bytes_atomic(path: Path, data: bytes, mode: int = FILE_MODE) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place (``mode``).

    Readers see the old file or the whole new one, never a part; the temporary file is removed
    if anything fails.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
