"""Whole numbers typed by people (seeds, row and panel numbers): parsed without overflow.

``int(float("inf"))`` raises :class:`OverflowError` and ``float("1e400")`` is infinity, so the
usual ``int(float(text))`` turns a typed ``inf`` into "Something went wrong (OverflowError)".
:func:`whole_number` accepts ints, integral finite floats and their text (``"7"``, ``"7.0"``,
``" 1e3 "``) and refuses everything else with :class:`NotAWholeNumber`, a ``ValueError`` whose
message is one line naming the field and (shortened) what was typed. Range checks stay with the
caller, which knows the limit.
"""

from __future__ import annotations

import math
from typing import Any

#: Digits of an integer accepted as text: far above any limit, far below Python's 4300-digit cap.
MAX_DIGITS = 40


class NotAWholeNumber(ValueError):
    """The value is not a finite whole number (one-line message naming the field)."""


def _shown(value: Any) -> str:
    text = " ".join(str(value).split())
    return ascii(text if len(text) <= 24 else text[:21] + "...")


def whole_number(value: Any, label: str) -> int:
    """``value`` (an int, a float or text) as an int, or :class:`NotAWholeNumber`.

    Args:
        label: how the message names the field ("the new seed").
    Raises:
        NotAWholeNumber: booleans, fractions, NaN, infinities, overflowing text (``1e400``),
            more than :data:`MAX_DIGITS` digits, or anything else that is not a number.
    """
    refusal = NotAWholeNumber(f"{label} must be a whole number, got {_shown(value)}")
    if isinstance(value, bool):
        raise refusal
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        digits = text.lstrip("+-")
        if digits.isascii() and digits.isdigit():
            if len(digits) > MAX_DIGITS:
                raise refusal
            return int(text)
        if len(text) > MAX_DIGITS * 2:
            raise refusal
        value = text
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise refusal from None
    if not math.isfinite(number) or not number.is_integer():
        raise refusal
    return int(number)


__all__ = ["MAX_DIGITS", "NotAWholeNumber", "whole_number"]
