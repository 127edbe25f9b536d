"""The server's own secrets, in a file beside the database that only the server's user can read.

``<data root>/comic-identity-secrets.json`` (mode 0600): ``{"<name>": "<random token>", ...}``,
each made on first use (256 random bits) and kept across restarts. They are kept out of the
database on purpose: anyone who reads the database (a backup, a copied file) still cannot turn
its hashes back into browser keys or forge a visit cookie.

* ``owner_keys``: the HMAC key that turns a browser's owner key into the id stored in the
  database (:meth:`serving.store.Store.owner_ref`).
* ``visits``: the HMAC key that signs the visit cookie (:mod:`serving.visitor_files`).

Losing the file costs little: the stored job ids of browser owners no longer match (their
training history is not listed); identities and saved comics are found by folder and are kept.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from pathlib import Path

from core.files import write_bytes_atomic
from identities.names import LibraryError

SECRETS_FILE = "comic-identity-secrets.json"
SECRETS_MODE = 0o600


class SecretsError(LibraryError):
    """The secrets file cannot be read or written (one-line message saying how to recover)."""


class ServerSecrets:
    """Named random secrets kept in one 0600 JSON file (see the module docstring).

    Args:
        path: the file (created on the first :meth:`get`).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ServerSecrets({str(self.path)!r})"

    def _load(self) -> dict[str, str]:
        try:
            if self.path.stat().st_size > 64 * 1024:
                raise ValueError("too big")
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise SecretsError(f"cannot read {self.path} ({exc}); move it away to start with new "
                               "secrets (browser visitors' training history is then not listed)"
                               ) from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise SecretsError(f"{self.path} is not a secrets file; move it away to start with "
                               "new secrets")
        return data

    def get(self, name: str) -> bytes:
        """The secret ``name`` (made and written on first use), as bytes.

        Raises:
            SecretsError: the file is unreadable, malformed or cannot be written.
        """
        with self._lock:
            data = self._load()
            if name not in data:
                data[name] = secrets.token_hex(32)
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    write_bytes_atomic(self.path, json.dumps(data, indent=1).encode("utf-8"),
                                       mode=SECRETS_MODE)
                except OSError as exc:
                    raise SecretsError(f"cannot write {self.path}: {exc.strerror or exc}") from None
            return data[name].encode("ascii")


__all__ = ["SECRETS_FILE", "SECRETS_MODE", "SecretsError", "ServerSecrets"]
