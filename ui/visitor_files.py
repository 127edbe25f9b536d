"""FastAPI and Gradio wiring of per-visitor downloads (the rules: :mod:`serving.visitor_files`).

* :class:`VisitorFileGate`, an ASGI middleware: gives every response to a request without a
  valid visit cookie a new one (``HttpOnly``; ``SameSite=None; Secure`` over HTTPS, as a Space
  is embedded in a page of huggingface.co, else ``SameSite=Lax``), and answers 404 to a request
  for ``/gradio_api/file=<path>`` whose file was delivered to other visits only.
* :func:`record_deliveries`: wraps the Blocks' ``process_api`` (on this one Blocks object, not
  the class) so the files of every event's output are recorded for the requesting visit.
* :func:`app_kwargs`: what ``launch(app_kwargs=...)`` needs to install the middleware.
"""

from __future__ import annotations

import functools
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware

from serving.visitor_files import VISIT_COOKIE, VisitorFiles, served_paths

if TYPE_CHECKING:  # pragma: no cover
    import gradio as gr

#: The route Gradio serves files on (after the app's root path).
FILE_ROUTE = "/gradio_api/file="
#: How long a browser keeps its visit cookie (seconds).
COOKIE_MAX_AGE_S = 30 * 24 * 3600


def _cookie(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed header is no cookie
                return None
            if VISIT_COOKIE in jar:
                return jar[VISIT_COOKIE].value
    return None


def _secure(scope: dict) -> bool:
    if scope.get("scheme") == "https":
        return True
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-proto" and value.split(b",")[0].strip() == b"https":
            return True
    return False


class VisitorFileGate:
    """ASGI middleware (see the module docstring).

    Args:
        app: the wrapped ASGI app. files: the delivery records.
    """

    def __init__(self, app: Any, files: VisitorFiles) -> None:
        self.app = app
        self.files = files

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        visit = self.files.visit_of(_cookie(scope.get("headers", [])))
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        # scope["path"] is decoded once, as the route that serves the file reads it
        if path.startswith(FILE_ROUTE) and not self.files.may_fetch(visit, path[len(FILE_ROUTE):]):
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body", "body": b"Not Found"})
            return
        if visit is not None:
            await self.app(scope, receive, send)
            return
        attributes = "SameSite=None; Secure" if _secure(scope) else "SameSite=Lax"
        cookie = (f"{VISIT_COOKIE}={self.files.new_cookie()}; Path=/; HttpOnly; "
                  f"Max-Age={COOKIE_MAX_AGE_S}; {attributes}").encode("latin-1")

        async def send_with_cookie(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"set-cookie", cookie)]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def record_deliveries(demo: "gr.Blocks", files: VisitorFiles) -> None:
    """Record the files of every event output of ``demo`` as delivered to the requesting visit."""
    original = demo.process_api

    @functools.wraps(original)
    async def process_api(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)
        request = kwargs.get("request")
        requests = request if isinstance(request, list) else [request]
        data = result.get("data") if isinstance(result, dict) else None
        paths = served_paths(data)
        for one in requests:
            cookies = getattr(one, "cookies", None) if one is not None else None
            visit = files.visit_of(cookies.get(VISIT_COOKIE)) if cookies else None
            files.deliver(visit, paths)
        return result

    demo.process_api = process_api  # type: ignore[method-assign]


def app_kwargs(files: VisitorFiles | None) -> dict[str, Any]:
    """``launch``'s ``app_kwargs``: the gate as a middleware ({} without per-visitor files)."""
    return {"middleware": [Middleware(VisitorFileGate, files=files)]} if files else {}


__all__ = ["FILE_ROUTE", "VisitorFileGate", "app_kwargs", "record_deliveries"]
