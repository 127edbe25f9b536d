"""The one exception type of the story parser."""

from __future__ import annotations


class StoryError(ValueError):
    """Bad input to the story parser: the message is one line meant for the user."""
