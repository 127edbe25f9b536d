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


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place.

    Readers see the old file or the whole new one, never a part; the temporary file is removed
    if anything fails.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
