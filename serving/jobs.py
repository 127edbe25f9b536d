"""A first-in first-out training queue: one identity trains at a time per GPU, others wait.

The queue belongs to the running app (created once in ``app.py`` and handed to the handlers), so
a browser that reloads the page can look its job up again by id. Each job carries its own progress
and cancel flag; the work itself is a function injected at construction, which keeps this module
free of model code and easy to test. A job's ``on_status`` callback hears every status change
(running, done, failed, cancelled), so a caller can record it (see
:class:`~serving.training_service.TrainingService`, which writes them to SQLite).
``interrupted`` is the status a job recorded as running gets when the server restarted.
"""

from __future__ import annotations

import itertools
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

JobStatus = Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
FINISHED: tuple[JobStatus, ...] = ("done", "failed", "cancelled", "interrupted")


@dataclass(frozen=True)
class JobProgress:
    """Progress reported by the work function (steps, loss and seconds)."""

    step: int
    total: int
    loss: float | None = None
    elapsed_s: float = 0.0
    eta_s: float | None = None


@dataclass(frozen=True)
class JobView:
    """A snapshot of one job, safe to hand to the UI.

    ``position`` is 0 while running, k >= 1 when k jobs run or wait ahead of it, None when finished.
    """

    id: str
    label: str
    status: JobStatus
    progress: JobProgress
    message: str
    position: int | None
    created: float

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def fraction(self) -> float:
        """0.0 .. 1.0 of the steps done."""
        total = max(self.progress.total, 1)
        return min(1.0, self.progress.step / total)

    def describe(self) -> str:
        """One human line: what the job is doing, how far, how long is left."""
        p = self.progress
        if self.status == "queued":
            return f"{self.label}: waiting, {self.position} job(s) ahead"
        if self.status == "running":
            eta = f", about {p.eta_s:.0f} s left" if p.eta_s is not None else ""
            loss = f", loss {p.loss:.4f}" if p.loss is not None else ""
            return f"{self.label}: step {p.step}/{p.total}{loss}{eta}"
        return f"{self.label}: {self.status}" + (f" — {self.message}" if self.message else "")


WorkFunction = Callable[[Callable[[JobProgress], None], threading.Event], str]
StatusCallback = Callable[[JobView], None]


@dataclass
class _Job:
    id: str
    label: str
    work: WorkFunction
    seq: int
    created: float = field(default_factory=time.time)
    status: JobStatus = "queued"
    progress: JobProgress = field(default_factory=lambda: JobProgress(0, 0))
    message: str = ""
    cancel: threading.Event = field(default_factory=threading.Event)
    on_status: StatusCallback | None = None


class TrainingQueue:
    """Runs submitted work functions one at a time on a daemon worker thread.

    A work function receives ``(report_progress, cancel_event)`` and returns a message for the
    user; raising an exception marks the job failed with the exception's text (a short line,
    never a traceback in the UI — the traceback goes to ``on_error`` for the server log).
    """

    def __init__(self, on_error: Callable[[str], None] | None = None, keep_finished: int = 200) -> None:
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._counter = itertools.count()
        self._on_error = on_error
        self._keep_finished = keep_finished
        self._closed = False
        self._worker = threading.Thread(target=self._run, name="training-queue", daemon=True)
        self._worker.start()

    def submit(self, label: str, work: WorkFunction, *, job_id: str | None = None,
               on_status: StatusCallback | None = None) -> JobView:
        """Queue ``work``; returns its first snapshot (status queued).

        Args:
            job_id: the id to use (a job recorded before a restart keeps its id); default new.
            on_status: called with the job's snapshot after each status change, outside the
                queue's lock; its exceptions go to ``on_error`` and never stop the queue.
        Raises:
            ValueError: ``job_id`` is already known.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the training queue is shut down")
            job_id = job_id or uuid.uuid4().hex[:12]
            if job_id in self._jobs:
                raise ValueError(f"job {job_id} is already queued")
            job = _Job(id=job_id, label=label, work=work, seq=next(self._counter),
                       on_status=on_status)
            self._jobs[job.id] = job
            self._forget_old()
            self._wake.notify_all()
            return self._view(job)

    def get(self, job_id: str) -> JobView | None:
        """The job's current snapshot, or None if unknown (or long finished and forgotten)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return self._view(job) if job else None

    def jobs(self) -> list[JobView]:
        """Every known job, oldest first."""
        with self._lock:
            return [self._view(j) for j in sorted(self._jobs.values(), key=lambda j: j.seq)]

    def cancel(self, job_id: str) -> bool:
        """Ask a job to stop (a queued job never starts). False if unknown or finished."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status in FINISHED:
                return False
            job.cancel.set()
            if job.status != "queued":
                return True
            job.status, job.message = "cancelled", "cancelled before it started"
            view = self._view(job)
        self._announce(job, view)
        return True

    def wait(self, job_id: str, timeout_s: float | None = None) -> JobView | None:
        """Block until the job finishes (or the timeout passes); returns its snapshot."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._lock:
            while True:
                job = self._jobs.get(job_id)
                if job is None or job.status in FINISHED:
                    return self._view(job) if job else None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return self._view(job)
                self._wake.wait(left)

    def shutdown(self) -> None:
        """Cancel everything and stop the worker after the current job."""
        with self._lock:
            self._closed = True
            for job in self._jobs.values():
                job.cancel.set()
            self._wake.notify_all()

    # ------------------------------------------------------------------ internals

    def _announce(self, job: _Job, view: JobView) -> None:
        """Tell the job's ``on_status`` (never raises: a failing callback is logged)."""
        if job.on_status is None:
            return
        try:
            job.on_status(view)
        except Exception:  # noqa: BLE001 - recording a status must not stop the queue
            if self._on_error is not None:
                self._on_error(traceback.format_exc())

    def _view(self, job: _Job) -> JobView:
        position: int | None = None
        if job.status == "running":
            position = 0
        elif job.status == "queued":
            position = sum(1 for j in self._jobs.values()
                           if j.status in ("queued", "running") and j.seq < job.seq)
        return JobView(id=job.id, label=job.label, status=job.status, progress=job.progress,
                       message=job.message, position=position, created=job.created)

    def _forget_old(self) -> None:
        finished = sorted((j for j in self._jobs.values() if j.status in FINISHED), key=lambda j: j.seq)
        for job in finished[:max(0, len(finished) - self._keep_finished)]:
            del self._jobs[job.id]

    def _next(self) -> _Job | None:
        with self._lock:
            while True:
                queued = [j for j in self._jobs.values() if j.status == "queued"]
                if queued:
                    job = min(queued, key=lambda j: j.seq)
                    job.status = "running"
                    return job
                if self._closed:
                    return None
                self._wake.wait()

    def _run(self) -> None:
        while (job := self._next()) is not None:
            with self._lock:
                started = self._view(job)
            self._announce(job, started)

            def report(progress: JobProgress, job: _Job = job) -> None:
                with self._lock:
                    job.progress = progress
            try:
                message = job.work(report, job.cancel)
                status: JobStatus = "cancelled" if job.cancel.is_set() else "done"
            except Exception as exc:  # noqa: BLE001 - a failed job must not stop the queue
                cancelled = job.cancel.is_set()
                status = "cancelled" if cancelled else "failed"
                message = "cancelled" if cancelled else (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                if not cancelled and self._on_error is not None:
                    self._on_error(traceback.format_exc())
            with self._lock:  # recorded before waiters see it, so they find it recorded
                ended = replace(self._view(job), status=status, message=message, position=None)
            self._announce(job, ended)
            with self._lock:
                job.status, job.message = status, message
                self._wake.notify_all()

