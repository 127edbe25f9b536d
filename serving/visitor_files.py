"""Per-visitor downloads in multi-user mode: a served file goes only to the visit it was sent to.

Gradio serves every file a handler returns from its cache, at ``/gradio_api/file=<path>``; the
link alone used to be the only lock, so anybody holding a visitor's link could fetch that
visitor's ``comic.zip`` (with the learned identities), PDF, pages and faces. Here each browser
(or API client) gets a **visit cookie** on its first request: a random visit id signed with the
``visits`` secret (:mod:`serving.server_secrets`), ``<32 hex>.<32 hex HMAC>``. Every file the
server delivers in an event's output is recorded as *delivered to* the visit that made the
request (:meth:`VisitorFiles.deliver`); a request for a delivered file is answered only for a
visit it was delivered to (:meth:`VisitorFiles.may_fetch`), otherwise 404, as if it did not
exist. A file nobody was sent (a visitor's own upload shown back in the page, Gradio's assets)
is served as before. The same content sent to two visitors (a shared example's face) is
cached once by Gradio and recorded for both.

This module holds the rules only; :mod:`ui.visitor_files` wires them into the FastAPI app (the
cookie and the 404) and into Gradio's event outputs. Single-user mode does not use it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
from collections.abc import Iterable
from typing import Any

#: The cookie carrying the signed visit id.
VISIT_COOKIE = "comic_identity_visit"
#: A visit id: 128 random bits as 32 hex digits.
VISIT_PATTERN = re.compile(r"([0-9a-f]{32})\.([0-9a-f]{32})")
#: Recorded files before those whose copy is gone are forgotten (Gradio's cache is swept).
MAX_RECORDED = 100_000
#: The marker of a delivery made without a visit cookie: such a file is served to nobody.
NOBODY = ""


def served_paths(data: Any) -> list[str]:
    """The ``path`` of every file in an event's output (Gradio's ``FileData`` dicts, nested in
    lists and dicts as galleries and file lists send them)."""
    found: list[str] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            path = item.get("path")
            if isinstance(path, str) and ("url" in item or "meta" in item):
                found.append(path)
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return found


def _key(path: str) -> str:
    return os.path.realpath(path)


class VisitorFiles:
    """Who may fetch which served file (see the module docstring). Thread-safe.

    Args:
        secret: the HMAC key signing visit cookies (``ServerSecrets.get("visits")``).
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._lock = threading.Lock()
        self._delivered: dict[str, set[str]] = {}

    def __repr__(self) -> str:
        return f"VisitorFiles({len(self._delivered)} files delivered)"

    def _sign(self, visit: str) -> str:
        return hmac.new(self._secret, visit.encode("ascii"), hashlib.sha256).hexdigest()[:32]

    def new_cookie(self) -> str:
        """A fresh signed visit cookie value: ``<visit id>.<signature>``."""
        visit = secrets.token_hex(16)
        return f"{visit}.{self._sign(visit)}"

    def visit_of(self, cookie: object) -> str | None:
        """The visit id of a cookie value, or None when it is missing, malformed or forged."""
        match = VISIT_PATTERN.fullmatch(cookie) if isinstance(cookie, str) else None
        if match is None or not hmac.compare_digest(match.group(2), self._sign(match.group(1))):
            return None
        return match.group(1)

    def deliver(self, visit: str | None, paths: Iterable[str]) -> None:
        """Record ``paths`` (as Gradio serves them) as sent to ``visit``; a delivery without a
        visit makes the files fetchable by nobody."""
        keys = [_key(p) for p in paths]
        if not keys:
            return
        with self._lock:
            for key in keys:
                self._delivered.setdefault(key, set()).add(visit or NOBODY)
            if len(self._delivered) > MAX_RECORDED:
                self._forget_gone()

    def _forget_gone(self) -> None:
        """Drop the records of files whose served copy no longer exists (lock held)."""
        for key in [k for k in self._delivered if not os.path.exists(k)]:
            del self._delivered[key]

    def may_fetch(self, visit: str | None, path: str) -> bool:
        """Whether a request of ``visit`` (None: no valid cookie) may fetch the served ``path``:
        yes for a file never delivered, else only for a visit it was delivered to."""
        with self._lock:
            receivers = self._delivered.get(_key(path))
        return receivers is None or (visit is not None and visit in receivers)


__all__ = ["MAX_RECORDED", "VISIT_COOKIE", "VisitorFiles", "served_paths"]
