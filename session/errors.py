"""What the user is told: the one-line errors of the session and :func:`user_message`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from identities.names import LibraryError, one_line
from llm import StoryError
from pipelines.project import GenerationError, ProjectError
from pipelines.safety import UnsafePrompt
from pipelines.styles import StyleError

if TYPE_CHECKING:  # pragma: no cover
    pass

logger = logging.getLogger(__name__)


class StudioError(ValueError):
    """Something the user can fix, said in one line."""


class ModelsUnavailable(StudioError):
    """The models failed to load at start-up; the message says why."""


# ----------------------------------------------------------------------------- messages

def _user_error_types() -> tuple[type[BaseException], ...]:
    """Exception types whose message is meant for the user as it is."""
    from configs import ConfigError
    from faces.face_prep import FacePrepError
    from pipelines.binding import BindingError

    return (StudioError, LibraryError, FacePrepError, StoryError, UnsafePrompt, GenerationError,
            ProjectError, StyleError, BindingError, ConfigError)


def user_message(exc: BaseException) -> str:
    """The one-line text to show for ``exc``.

    Known user errors keep their message; anything else is logged with its traceback and shown as
    a short "something went wrong" line naming the error type.
    """
    if isinstance(exc, _user_error_types()):
        text = one_line(str(exc)) or type(exc).__name__  # control and bidi characters escaped
        first = text.split(" ", 1)[0]
        return text[0].upper() + text[1:] if first.isalpha() else text
    logger.error("unexpected error in the app", exc_info=exc)
    detail = one_line(str(exc))[:200]
    return (f"Something went wrong ({type(exc).__name__}{': ' + detail if detail else ''}). "
            "The details are in the server log; the app keeps working.")


# ----------------------------------------------------------------------------- session data



def zero_based(number: Any, count: int, what: str, range_text: str) -> int:
    """A 1-based number typed by the user -> a 0-based index below ``count`` (StudioError if not)."""
    from core.numbers import NotAWholeNumber, whole_number

    try:
        value = whole_number(number, f"the {what} number")
    except NotAWholeNumber:
        raise StudioError(f"give a {what} number from 1 to {count}") from None
    if not 1 <= value <= count:
        raise StudioError(f"{what} {value} does not exist; {range_text} 1 to {count}")
    return value - 1


__all__ = ['ModelsUnavailable', 'StudioError', 'user_message', 'zero_based']
