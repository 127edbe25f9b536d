"""Where Comic Identity keeps its own cache, and how it writes files without leaving half of one.

``$COMIC_CACHE`` (default ``~/.cache/comic_identity``) holds the converted CLIP vocabulary,
facexlib weights and the celebrity-name statistics; Hugging Face weights stay in the HF cache.
"""

from __future__ import annotations

import hashlib
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


#: The file types :func:`served_copy` copies (pictures only).
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def served_copy(source: str | os.PathLike, folder: Path) -> Path:
    """A copy of the picture ``source`` inside ``folder`` (a folder a web server may serve),
    for pictures kept elsewhere (a library on persistent storage such as ``/data/embeddings``).

    The copy is ``folder/<16 hex digits>/<name>``, the digits hashing the source's resolved path,
    size and modification time: asking again returns the same copy without copying, a changed
    file gets a new one. Written atomically.

    Raises:
        ValueError: not a picture (only :data:`PICTURE_SUFFIXES` are copied).
        OSError: the source cannot be read or the copy written.
    """
    source = Path(source).resolve()
    if source.suffix.lower() not in PICTURE_SUFFIXES:
        raise ValueError(f"{source.name} is not a picture")
    stat = source.stat()
    digest = hashlib.sha256(f"{source}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()
    target = folder / digest[:16] / source.name
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(target, source.read_bytes())
    return target
