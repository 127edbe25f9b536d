"""Training on a Hugging Face ZeroGPU Space: inside ``spaces.GPU``, streamed from the request.

On ZeroGPU (``SPACES_ZERO_GPU=true``, as the ``spaces`` package detects it) a GPU exists only while
a function decorated with ``spaces.GPU`` runs, called from a Gradio request; ``spaces`` runs it
in a forked worker process that holds the GPU and passes the arguments and every yielded value
through pickling. A background training thread (the :class:`~serving.jobs.TrainingQueue`)
gets no GPU there. So on ZeroGPU the Train request itself iterates :meth:`ZeroGPUTraining.run`,
which calls a ``spaces.GPU(duration=...)``-decorated generator; the generator runs the same work
function the queue would run (:meth:`TrainingService.work`) and yields
:class:`~serving.jobs.JobProgress` snapshots, then the final message. Dedicated-GPU Spaces
and local GPUs keep the background queue.

The GPU time asked for is :func:`training_duration_s`: setup plus steps times the seconds per
step measured on this Space's earlier runs (:class:`StepSpeed`; before the first run the speed
measured on an H200, ``configs/speeds.yaml`` via :mod:`serving.gpu_speeds`), with a margin. When ZeroGPU refuses (quota used up, duration over the limit) or stops
the worker (the time ran out), :class:`GPUTimeError` says so in one line.

This module does not import torch or ``spaces`` at import time: ``app.py`` calls
:func:`import_spaces_first` before anything initialises CUDA, as ``spaces`` requires.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from serving.gpu_speeds import PANEL_PIXELS, PANEL_STEPS, GPUSpeeds, default_speeds
from serving.jobs import JobProgress
from identities.names import LibraryError

if TYPE_CHECKING:  # pragma: no cover
    from serving.training_service import TrainingRequest, TrainingService

#: The environment variable ZeroGPU Spaces set (``spaces.config``: "1", "t" or "true").
ZERO_GPU_ENV = "SPACES_ZERO_GPU"
class GPUTimeError(LibraryError):
    """ZeroGPU gave no GPU time or took it back; the message says what to do (one line)."""


def on_zero_gpu(environ: Mapping[str, str] | None = None) -> bool:
    """True on a ZeroGPU Space (``SPACES_ZERO_GPU`` is 1/t/true, as ``spaces`` reads it)."""
    value = (os.environ if environ is None else environ).get(ZERO_GPU_ENV)
    return value is not None and value.strip().lower() in ("1", "t", "true")


def import_spaces_first() -> bool:
    """On ZeroGPU, import ``spaces`` now (it must come before CUDA is initialised); True if done.

    Raises:
        ImportError: on ZeroGPU without the ``spaces`` package (it is in requirements.txt).
    """
    if not on_zero_gpu():
        return False
    import spaces  # noqa: F401  (patches torch for ZeroGPU)
    return True


def gpu(fn: Callable | None = None, *, duration: int | Callable[..., int] | None = None) -> Callable:
    """``spaces.GPU(fn, duration=...)`` where the ``spaces`` package is importable, ``fn``
    elsewhere (outside ZeroGPU ``spaces.GPU`` returns ``fn`` itself). Usable as ``gpu(fn)`` or
    ``gpu(duration=...)(fn)``; ``duration`` may be a callable taking ``fn``'s arguments."""
    if fn is None:
        return lambda task: gpu(task, duration=duration)
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return fn
    return spaces.GPU(fn, duration=duration) if duration is not None else spaces.GPU(fn)


def training_duration_s(steps: int, seconds_per_step: float | None = None, *,
                        speeds: GPUSpeeds | None = None) -> int:
    """GPU seconds to ask for: ``(setup + steps * seconds_per_step) * margin`` within ZeroGPU's
    per-call limits (:meth:`serving.gpu_speeds.GPUSpeeds.training_duration_s`; ``speeds``
    default ``configs/speeds.yaml``, ``seconds_per_step`` default its measured speed)."""
    return (speeds or default_speeds()).training_duration_s(steps, seconds_per_step)


def drawing_duration_s(panels: int, candidates: int = 1, *, face_pass: bool = True,
                       steps: int = PANEL_STEPS, pixels: int = PANEL_PIXELS,
                       speeds: GPUSpeeds | None = None) -> int:
    """GPU seconds to ask for when drawing ``panels`` x ``candidates`` images of ``steps`` steps
    and ``pixels`` pixels, from the measured panel and face-pass speeds
    (:meth:`serving.gpu_speeds.GPUSpeeds.drawing_duration_s`)."""
    return (speeds or default_speeds()).drawing_duration_s(panels, candidates, face_pass, steps, pixels)


class StepSpeed:
    """Seconds per training step measured on this process's finished runs (thread-safe).

    Before any measurement ``estimate`` (default: the H200 speed of ``configs/speeds.yaml`` on a
    ZeroGPU slice, :meth:`serving.gpu_speeds.GPUSpeeds.seconds_per_step`); after, the latest run's
    ``elapsed_s / step`` (which includes the augmentation-pool fill and any compilation, so it
    errs on the long side).
    """

    def __init__(self, estimate: float | None = None) -> None:
        self._lock = threading.Lock()
        self._seconds: float | None = None
        self.estimate = default_speeds().seconds_per_step() if estimate is None else estimate

    @property
    def measured(self) -> bool:
        with self._lock:
            return self._seconds is not None

    def seconds_per_step(self) -> float:
        with self._lock:
            return self._seconds if self._seconds is not None else self.estimate

    def record(self, progress: JobProgress) -> None:
        """Take the speed of a run from its last progress snapshot (ignored before step 1)."""
        if progress.step >= 1 and progress.elapsed_s > 0:
            with self._lock:
                self._seconds = progress.elapsed_s / progress.step


def stream_work(work: Callable[[Callable[[JobProgress], None], threading.Event], str],
                poll_s: float = 0.5) -> Iterator[JobProgress | str]:
    """Run a queue-style work function ``work(report, cancel) -> message`` on a helper thread
    and yield its progress (only the newest snapshot, at most every ``poll_s`` seconds), then
    its message. Closing the generator (the request was cancelled) sets ``cancel`` and waits for
    the work to stop; the work's exception is raised here."""
    updates: queue.Queue[JobProgress] = queue.Queue()
    cancel = threading.Event()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["message"] = work(updates.put, cancel)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the generator
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="zero-gpu-training", daemon=True)
    thread.start()
    try:
        while thread.is_alive() or not updates.empty():
            thread.join(poll_s)
            latest = None
            while not updates.empty():
                latest = updates.get_nowait()
            if latest is not None:
                yield latest
    finally:
        if thread.is_alive():
            cancel.set()
            thread.join()
    if "error" in outcome:
        raise outcome["error"]
    yield outcome["message"]


def _gpu_time_message(exc: BaseException, duration_s: int) -> str | None:
    """Our one line for a ZeroGPU refusal or abort, or None when ``exc`` is something else."""
    message = getattr(exc, "message", None)   # gradio.Error's str() is the repr of its message
    text = " ".join((message if isinstance(message, str) else str(exc)).split())
    title = " ".join(str(getattr(exc, "title", "") or "").split())
    both = f"{title} {text}".lower()
    if "gpu task aborted" in both:
        return (f"training stopped: the {duration_s} s of GPU time granted for it ran out (or the "
                "GPU worker stopped) before it finished; nothing was saved. Try fewer training "
                "steps under Advanced, or run the app on a dedicated GPU")
    if "zerogpu" in both or "quota" in both or "gpu duration" in both:
        detail = text.rstrip(". ")
        return (f"training could not get GPU time on this ZeroGPU Space ({detail}); nothing was "
                "saved. Try again later, sign in to Hugging Face for a larger GPU quota, or lower "
                "the training steps under Advanced")
    return None


class ZeroGPUTraining:
    """Trains identities inside ``spaces.GPU`` on a ZeroGPU Space (module docstring).

    Args:
        service: checks requests and provides the work function (and the library it saves to).
        speed: measured seconds per step (shared by the process).
        decorate: the GPU decorator (default :func:`gpu`: ``spaces.GPU`` when available).
    """

    def __init__(self, service: "TrainingService", speed: StepSpeed | None = None,
                 decorate: Callable[..., Callable] = gpu) -> None:
        self.service = service
        self.speed = speed or StepSpeed()
        # decorated once, at construction: spaces packs the models at launch only when at least
        # one function is decorated by then
        self._on_gpu = decorate(self._train, duration=self.duration_s)

    def duration_s(self, request: "TrainingRequest") -> int:
        """GPU seconds asked for ``request`` (called by ``spaces`` with the same arguments)."""
        return training_duration_s(request.steps, self.speed.seconds_per_step())

    def _train(self, request: "TrainingRequest") -> Iterator[JobProgress | str]:
        """Runs inside the GPU worker: the same work as a queued job, streamed."""
        yield from stream_work(self.service.work(request))

    def run(self, request: "TrainingRequest") -> Iterator[JobProgress | str]:
        """Called from the Train request: yields progress snapshots, then the final message.

        Raises:
            GPUTimeError: ZeroGPU refused the time or stopped the worker (one line).
        """
        duration = self.duration_s(request)
        last: JobProgress | None = None
        try:
            for item in self._on_gpu(request):
                if isinstance(item, JobProgress):
                    last = item
                yield item
        except Exception as exc:
            message = _gpu_time_message(exc, duration)
            if message is None:
                raise
            raise GPUTimeError(message) from None
        if last is not None and last.step == last.total:
            self.speed.record(last)


__all__ = ["GPUTimeError", "StepSpeed", "ZERO_GPU_ENV", "ZeroGPUTraining",
           "drawing_duration_s", "gpu", "import_spaces_first", "on_zero_gpu", "stream_work",
           "training_duration_s"]
