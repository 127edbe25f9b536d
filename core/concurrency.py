"""Who may use the shared models at once: one fair lock per device, one lock per native object.

The app serves many browsers from one process: Gradio runs handlers on a thread pool and the
training queue runs on its own worker thread, all on ONE set of models (``Components``). The
design (docs/APP.md, "Concurrency"):

* **Native face objects lock themselves.** dlib's detector, shape predictors and ResNet, facexlib's
  RetinaFace (it keeps per-call state on the module) and InsightFace's ONNX recogniser each own a
  ``threading.Lock`` taken inside their ``detect`` / ``embed``. Two threads in one dlib detector
  abort the process (``free(): corrupted unsorted chunks``); the locks make that impossible for
  every caller (app, CLI, benchmark), and they cost nothing measurable (a face call is
  milliseconds, nobody waits behind a whole panel for it).
* **Model work is serialised per device** by the :class:`DeviceGate` that each ``Components``
  owns: drawing one panel (prompt encoding + every candidate's denoising + VAE decode), one
  training step (and a run's set-up: face parsing, FR-ViT, celebrity statistics, VAE encodes).
  Inference through frozen torch modules would not corrupt memory from several threads, but two
  SDXL calls at once double the activation memory on a card sized for one (docs/PERFORMANCE.md),
  accelerate's CPU-offload hooks move the shared modules between devices and are not
  thread-safe, and interleaving kernels makes nothing faster on a saturated GPU.
* **The gate is fair** (:class:`FairRLock`, first come first served) and held per panel and per
  training step, never per comic or per run: a Generate click waits for at most one training step
  and one panel of each request ahead of it. CPython's own locks are not fair: a training loop
  that releases and re-takes a ``threading.Lock`` would starve the drawing thread.
* **Training may overlap generation** when ``runtime.overlap_training`` is true (and
  ``runtime.cpu_offload`` is off): training steps then skip the gate and run beside panels, peak
  memory being the SUM of both activations instead of the larger (see :meth:`DeviceGate.training`).
* **Everything else runs in parallel**: story parsing, layout, page rendering, exports, library
  reads, file work and the cheap Gradio events take no model lock.

Lock order: the gate may be held while a face object's lock is taken (a panel's face pass
detects faces), never the reverse; no face object calls into model work.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from configs import RuntimeConfig


class FairRLock:
    """A re-entrant lock granted in arrival order (a ticket lock).

    The owning thread may take it again (depth counted); other threads queue and get it strictly
    in the order they asked. No timeouts: a waiter waits until served.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._next_ticket = 0
        self._serving = 0
        self._owner: int | None = None
        self._depth = 0

    def acquire(self) -> bool:
        """Take the lock (blocking); returns True."""
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return True
            ticket = self._next_ticket
            self._next_ticket += 1
            while self._serving != ticket:
                self._cond.wait()
            self._owner, self._depth = me, 1
            return True

    def release(self) -> None:
        """Give the lock back (RuntimeError if this thread does not hold it)."""
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("cannot release a FairRLock held by another thread")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._serving += 1
                self._cond.notify_all()

    def held_by_me(self) -> bool:
        """Whether the calling thread holds the lock."""
        with self._cond:
            return self._owner == threading.get_ident()

    def waiting(self) -> int:
        """Threads queued for the lock (not counting the holder)."""
        with self._cond:
            return self._next_ticket - self._serving - (1 if self._owner is not None else 0)

    def __enter__(self) -> "FairRLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass
class DeviceGate:
    """The model lock of one device, owned by the ``Components`` loaded on it.

    Attributes:
        device: the torch device's name ("cuda", "cuda:1", "cpu"), for messages.
        lock: the fair, re-entrant lock; hold it around one unit of model work.
        adapters: held (inside ``lock``) while a comic's style LoRAs are loaded into the shared
            modules; a training step that overlaps drawing (``runtime.overlap_training``) takes
            it too, so no training step ever runs with a comic's LoRA in the modules.
    """

    device: str = "cpu"
    lock: FairRLock = field(default_factory=FairRLock, repr=False, compare=False)
    adapters: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def work(self) -> FairRLock:
        """Context for one unit of model work: a panel, a prompt encode, a training set-up."""
        return self.lock

    def training(self, runtime: "RuntimeConfig") -> contextlib.AbstractContextManager:
        """Context for one training step: the gate, or nothing when training may overlap.

        Overlap needs ``runtime.overlap_training`` and no CPU offload (offload hooks move the
        shared modules, so they must never run in two threads at once). With overlap the
        device holds a training step's activations and a panel's at the same time, except while
        a panel with style LoRAs holds :attr:`adapters` (the step waits for that panel).
        """
        if overlap_allowed(runtime):
            return self.adapters
        return self.lock

    def with_adapters(self, active: bool) -> contextlib.AbstractContextManager:
        """Context for a panel that loads style LoRAs (``active``): the :attr:`adapters` lock;
        nothing otherwise (hold :meth:`work` around it)."""
        return self.adapters if active else contextlib.nullcontext()


def overlap_allowed(runtime: "RuntimeConfig") -> bool:
    """Whether training steps may run beside generation on one device (see :class:`DeviceGate`)."""
    return bool(runtime.overlap_training) and not runtime.cpu_offload


__all__ = ["DeviceGate", "FairRLock", "overlap_allowed"]
