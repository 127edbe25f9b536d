"""Helpers shared by every step of the web app: error guarding, GPU wrapping, shared views.

Nothing here holds state: the views take the :class:`session.Studio` and the per-browser values
they show.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import gradio as gr

from serving.zero_gpu import gpu  # noqa: F401  (``spaces.GPU`` where installed, re-exported)
from session import user_message

if TYPE_CHECKING:  # pragma: no cover
    from session import RestoredProject, Session, Studio

# ----------------------------------------------------------------------------- concurrency
# Gradio concurrency groups (docs/APP.md, "Concurrency"). The models are protected below Gradio,
# for every caller: panels and training steps take turns on the Components' device gate, and
# each native face object locks itself (core/concurrency.py). These limits only bound
# how many requests of each kind are in flight; the rest wait in Gradio's queue (position shown).

#: Face checks (the training photo's face; speech-bubble faces after a candidate is chosen):
#: CPU, well under a second; the detector serialises them, four in flight keep the queue short.
FACES = {"concurrency_id": "faces", "concurrency_limit": 4}
#: Story parsing: no model, but Gemini may take up to ``llm.timeout_s``.
PARSING = {"concurrency_id": "parse", "concurrency_limit": 4}
#: Training inside the request on a ZeroGPU Space: one at a time, as the background queue runs.
TRAINING = {"concurrency_id": "training", "concurrency_limit": 1}
#: Every other event (library, cast, panel table, job polling, candidates, opening a project):
#: no model, milliseconds; bounded so a flood of requests cannot start unbounded threads.
OTHER_EVENTS = 16


def drawing(zero_gpu: bool) -> dict[str, Any]:
    """The ``gpu`` group of Generate and Redraw.

    Two requests in flight: they take turns on the device gate a panel at a time, so a one-panel
    redraw waits for one panel of a long comic, not for all of it, and the second request's CPU
    work (checks, face scores, pages, exports) overlaps the first one's panels. On ZeroGPU one:
    a request waiting for the gate would hold a GPU allocation (and its user's quota) idle.
    """
    return {"concurrency_id": "gpu", "concurrency_limit": 1 if zero_gpu else 2}


#: How often the page polls its training jobs (seconds).
POLL_SECONDS = 1.0
#: Job ids a browser remembers.
MAX_REMEMBERED_JOBS = 20


def guarded(fn: Callable) -> Callable:
    """Turn any exception of a handler into a one-line ``gr.Error`` (never a traceback)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:  # noqa: BLE001 - shown to the user as one line
                raise gr.Error(user_message(exc), print_exception=False) from None
        return stream

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - shown to the user as one line
            raise gr.Error(user_message(exc), print_exception=False) from None
    return call


def error_line(text: str) -> str:
    """The persistent one-line error shown in a step (markdown)."""
    return f"⚠️ **{text}**"


def _from_api(request: gr.Request | None) -> bool:
    """Whether the event came from ``gradio_client`` (it sends ``x-gradio-user: api``)."""
    headers = getattr(request, "headers", None) or {}
    return headers.get("x-gradio-user") == "api"


def on(trigger: Callable, fn: Callable, *, inputs: list, outputs: list, line: Any,
       on_gpu: bool = False, gpu_duration: Callable[..., int] | None = None,
       **kwargs: Any) -> Any:
    """Register ``fn`` on ``trigger`` (e.g. ``button.click``) so that errors stay on the page.

    ``line`` is the step's message line (a ``gr.Markdown``). When it is one of ``outputs``,
    ``fn`` fills it itself on success; otherwise it is appended to the outputs and cleared on
    success. When ``fn`` raises, a browser gets a toast and the error in ``line``, and every
    other output is left as it was (nothing good is blanked, no red "Error" pills); a
    ``gradio_client`` caller gets the error as an exception (one line), as before. ``on_gpu``
    wraps the handler in :func:`gpu`, asking for ``gpu_duration(*inputs)`` seconds when given.
    Returns the event dependency.
    """
    outs = list(outputs)
    appended = line not in outs
    if appended:
        outs.append(line)
    where = outs.index(line)

    def failed(exc: Exception, request: gr.Request | None) -> tuple:
        text = user_message(exc) if not isinstance(exc, gr.Error) else str(exc.message)
        if _from_api(request):
            raise gr.Error(text, print_exception=False) from None
        gr.Warning(text)
        values = [gr.skip()] * len(outs)
        values[where] = error_line(text)
        return tuple(values) if len(values) > 1 else values[0]

    def done(value: Any) -> Any:
        if not appended:
            return value
        return (value, "") if len(outputs) == 1 else (*value, "")

    count = len(inspect.signature(fn).parameters)

    def split(args: tuple) -> tuple[tuple, Any]:
        """(fn's arguments, the request gradio appended; None when called directly)."""
        return (args[:-1], args[-1]) if len(args) == count + 1 else (args, None)

    if inspect.isgeneratorfunction(fn):
        def handler(*args: Any):
            args, request = split(args)
            try:
                for value in fn(*args):
                    yield done(value)
            except Exception as exc:  # noqa: BLE001 - shown to the user as one line
                yield failed(exc, request)
    else:
        def handler(*args: Any):
            args, request = split(args)
            try:
                return done(fn(*args))
            except Exception as exc:  # noqa: BLE001 - shown to the user as one line
                return failed(exc, request)

    params = list(inspect.signature(fn).parameters.values())
    params.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    default=None, annotation=gr.Request))
    handler.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    try:
        hints = typing.get_type_hints(fn)
    except (NameError, TypeError):
        hints = {}
    handler.__annotations__ = {**hints, "request": gr.Request}
    handler.__name__ = getattr(fn, "__name__", "handler")
    handler.__doc__ = fn.__doc__
    if on_gpu:
        duration = None if gpu_duration is None else \
            (lambda *args, **kw: gpu_duration(*split(args)[0]))  # without the request
        handler = gpu(handler, duration=duration)
    return trigger(handler, inputs=inputs, outputs=outs, **kwargs)


def warn_all(lines: Iterable[str]) -> None:
    """One ``gr.Warning`` toast per line."""
    for line in lines:
        gr.Warning(line)


def selected_index(evt: gr.SelectData) -> int:
    """The 0-based index of a gallery selection."""
    return evt.index if isinstance(evt.index, int) else evt.index[0]


@dataclass
class Shared:
    """Per-browser values every step may read or write.

    Attributes:
        session: ``gr.State`` holding a :class:`session.Session`.
        owner_key: the browser's owner key in multi-user mode (local storage).
        jobs: the browser's training job ids (local storage).
        finished_seen: job ids whose end was already announced.
        shown_names: the library names in gallery order (to map a click to a name).
        timer: polls the training jobs while any runs.
    """

    session: gr.State
    owner_key: gr.BrowserState
    jobs: gr.BrowserState
    finished_seen: gr.State
    shown_names: gr.State
    timer: gr.Timer


def library_view(studio: "Studio", session: "Session", keep: str | None = None) -> tuple:
    """Gallery, dropdown (keeping ``keep`` selected while it exists), summary, names."""
    entries = studio.library_entries(session)
    names = [e.name for e in entries]
    choice = gr.Dropdown(choices=names, value=keep if keep in names else None)
    return studio.gallery_items(session), choice, studio.library_summary(session), names


def restored_view(studio: "Studio", session: "Session", restored: "RestoredProject") -> tuple:
    """What an opened project puts back: panel table, info (project and story), cast views, then
    the settings in the order of ``StyleStep.inputs()`` (see ``Studio.settings_from``)."""
    s = restored.settings
    return (restored.rows, restored.info, restored.info, *cast_view(studio, session),
            s.style, list(s.keywords), s.negative_prompt, s.seed, s.randomize, s.steps,
            s.guidance, s.width, s.height, s.candidates, s.title, s.face_pass,
            studio.lora_rows(s.loras))


def cast_view(studio: "Studio", session: "Session") -> tuple:
    """Cast line, cast gallery, cast dropdown."""
    return (studio.cast_text(session), studio.cast_gallery(session),
            gr.Dropdown(choices=list(session.cast), value=None))


def jobs_view(studio: "Studio", session: "Session", job_ids: list[str] | None) -> tuple:
    """Progress HTML, the timer (active while a job runs), the job views: the session owner's
    jobs among ``job_ids`` (the browser's), in multi-user mode also the owner's recent ones."""
    from serving.training_service import progress_html

    owner = studio.owner_of(session)
    views = studio.training.views(job_ids or [], owner) if owner is not None else []
    if studio.multi_user and owner is not None:
        known = {v.id for v in views}
        views += [v for v in studio.training.recent(owner) if v.id not in known]
    running = any(not v.finished for v in views)
    faces = studio.training.faces(views, owner) if owner is not None else {}
    return progress_html(views, faces), gr.Timer(active=running), views


def wire_sign_in(studio: "Studio", demo: gr.Blocks, shared: Shared):
    """On page load, set the session's owner (multi-user: the Hugging Face login on a Space,
    else the browser's key, a new one when it has none); returns the load event, which the
    steps chain their own page-load work on.

    The API ``sign_in`` (owner key -> the key in use) lets a ``gradio_client`` session act as
    the owner of a key it kept, as a browser does; on a Space the key is ignored (the login
    decides), in single-user mode nothing changes.
    """
    def sign_in(state, owner_key, profile: gr.OAuthProfile | None = None):
        key = studio.sign_in(state, owner_key, getattr(profile, "username", None))
        return state, key

    return demo.load(guarded(sign_in), inputs=[shared.session, shared.owner_key],
                     outputs=[shared.session, shared.owner_key], api_name="sign_in")
