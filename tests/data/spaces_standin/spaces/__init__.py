"""A stand-in for Hugging Face's ``spaces`` package on a ZeroGPU Space, for tests only.

Put its parent folder first on ``sys.path``. ``GPU`` behaves as ZeroGPU's decorator does for the
caller: the function gets "the GPU" from its call until it returns (a generator: until it is
exhausted or closed), the requested duration (a number or a callable taking the function's
arguments) is evaluated per call, and, as ZeroGPU passes them between the request and its forked
GPU worker, the arguments and every returned or yielded value go through ``pickle``. What ran
inside is visible through :func:`inside` (true while any GPU function runs) and :data:`CALLS`.
"""

from __future__ import annotations

import functools
import inspect
import pickle
import threading

_lock = threading.Lock()
_active = 0
#: (function name, requested seconds) per call of a decorated function.
CALLS: list[tuple[str, object]] = []
#: names of the decorated functions, in decoration order.
DECORATED: list[str] = []


def inside() -> bool:
    """True while a GPU function holds the GPU."""
    with _lock:
        return _active > 0


def _hold(delta: int) -> None:
    global _active
    with _lock:
        _active += delta


def _copy(value):
    return pickle.loads(pickle.dumps(value))


def GPU(task=None, *, duration=None, size=None):  # noqa: N802 - the real name
    if task is None:
        return lambda fn: GPU(fn, duration=duration, size=size)
    name = getattr(task, "__name__", repr(task))
    DECORATED.append(name)

    def begin(args, kwargs):
        seconds = duration(*args, **kwargs) if callable(duration) else duration
        CALLS.append((name, seconds))
        return _copy((args, kwargs))

    if inspect.isgeneratorfunction(task):
        @functools.wraps(task)
        def stream(*args, **kwargs):
            args, kwargs = begin(args, kwargs)
            _hold(+1)
            try:
                for item in task(*args, **kwargs):
                    yield _copy(item)
            finally:
                _hold(-1)
        return stream

    @functools.wraps(task)
    def call(*args, **kwargs):
        args, kwargs = begin(args, kwargs)
        _hold(+1)
        try:
            return _copy(task(*args, **kwargs))
        finally:
            _hold(-1)
    return call
