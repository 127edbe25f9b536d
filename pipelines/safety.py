"""Refuse explicit prompts: a configurable list of terms checked in stories and panel texts.

The list lives in ``configs/safety.yaml`` (whole words, case-insensitive; ``word*`` matches any
ending). Panels also always get a negative prompt against nudity (``generation.negative_prompt``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

DEFAULT_TERMS_FILE = Path(__file__).resolve().parents[1] / "configs" / "safety.yaml"


class UnsafePrompt(ValueError):
    """A story or panel text contains refused terms (one-line user message)."""


@dataclass(frozen=True)
class SafetyFilter:
    """Whole-word matcher for refused terms."""

    terms: tuple[str, ...]

    @classmethod
    def from_file(cls, path: str | Path = DEFAULT_TERMS_FILE) -> "SafetyFilter":
        return _load(str(path))

    @property
    def _pattern(self) -> re.Pattern[str]:
        parts = [re.escape(t[:-1]) + r"\w*" if t.endswith("*") else re.escape(t) for t in self.terms]
        return re.compile(r"\b(?:" + "|".join(parts) + r")\b", re.IGNORECASE) if parts else re.compile(r"(?!)")

    def find(self, text: str) -> list[str]:
        """The refused words found in ``text``, lower-cased, in order, without repeats."""
        seen: dict[str, None] = {}
        for match in self._pattern.finditer(text or ""):
            seen.setdefault(match.group(0).lower(), None)
        return list(seen)

    def check(self, text: str, what: str = "text") -> None:
        """Raise :class:`UnsafePrompt` naming the refused words, if any."""
        found = self.find(text)
        if found:
            raise UnsafePrompt(f"the {what} contains refused terms ({', '.join(found)}); "
                               "explicit content of real people is not generated")


@lru_cache(maxsize=4)
def _load(path: str) -> SafetyFilter:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    terms = raw.get("terms", []) if isinstance(raw, dict) else []
    if not all(isinstance(t, str) and t.strip() for t in terms):
        raise ValueError(f"{path}: 'terms' must be a list of words")
    return SafetyFilter(tuple(t.strip().lower() for t in terms))
