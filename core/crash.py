"""A test hook that kills the process at a named point, to prove a crash leaves no half entry.

Set ``COMIC_CRASH_AT`` to one of :data:`POINTS` and the process sends itself ``SIGKILL`` (the
same as ``kill -9``: no clean-up, no ``finally``) when it reaches that point. Unset (always, in
normal use) it costs one environment lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "COMIC_CRASH_AT"
#: The named points: inside a library write after the new entry is staged, inside a delete after
#: the entry is moved aside, inside a comic save after its files are staged, inside a comic
#: delete after it is marked as being deleted.
POINTS = ("library-add", "library-delete", "comic-save", "comic-delete")


def crash_point(name: str) -> None:
    """``SIGKILL`` this process when ``$COMIC_CRASH_AT`` equals ``name``."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


__all__ = ["ENV", "POINTS", "crash_point"]
