"""The drawing pipeline's base error: a request that cannot be drawn, said in one line."""

from __future__ import annotations


class GenerationError(ValueError):
    """A request that cannot be drawn (one-line message naming the panel and the problem)."""


__all__ = ["GenerationError"]
