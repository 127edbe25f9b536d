"""What the story parser produces: panels and the result that says how they were made."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ParserName = Literal["gemini", "offline"]


@dataclass
class Panel:
    """One comic panel: a short sentence naming every character in full, and those characters.

    Attributes:
        text: the sentence drawn in the panel ("Hugh Jackman walked to school.").
        characters: the full names that occur in ``text``, in order of first occurrence.
        speakers: who says each quoted line of ``text``, in order (a full name, or "" when
            unknown); empty when the sentence quotes nobody (see :mod:`llm.speakers`).
    """

    text: str
    characters: list[str] = field(default_factory=list)
    speakers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the panel generator reads: ``{"text": ..., "characters": [...]}``, plus
        ``"speakers": [...]`` when the sentence quotes someone."""
        out: dict[str, Any] = {"text": self.text, "characters": list(self.characters)}
        if self.speakers:
            out["speakers"] = list(self.speakers)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Panel:
        """Read the JSON form back.

        Raises:
            ValueError: not a mapping, ``text`` not a non-empty string, or ``characters`` not a
                list of strings.
        """
        if not isinstance(data, Mapping):
            raise ValueError(
                f"a panel must be an object with 'text' and 'characters', got {type(data).__name__}"
            )
        text = data.get("text")
        characters = data.get("characters", [])
        if not isinstance(text, str) or not text.strip():
            raise ValueError("a panel's 'text' must be a non-empty string")
        if not isinstance(characters, list) or not all(isinstance(c, str) for c in characters):
            raise ValueError("a panel's 'characters' must be a list of names")
        speakers = data.get("speakers", [])
        if not isinstance(speakers, list) or not all(isinstance(s, str) for s in speakers):
            raise ValueError("a panel's 'speakers' must be a list of names")
        return cls(text=text.strip(), characters=list(characters), speakers=list(speakers))


@dataclass
class ParseResult:
    """The outcome of parsing a story.

    Attributes:
        panels: one panel per story sentence (offline) or per event (Gemini).
        parser: which parser produced ``panels``: "gemini" or "offline".
        warnings: things the user should check (unresolved pronouns, names never used, ...).
        fallback_reason: why Gemini was not used or its reply was rejected; None when Gemini
            produced the panels or the offline parser was asked for explicitly.
    """

    panels: list[Panel]
    parser: ParserName
    warnings: list[str] = field(default_factory=list)
    fallback_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (panels plus provenance)."""
        return {
            "panels": [p.to_dict() for p in self.panels],
            "parser": self.parser,
            "warnings": list(self.warnings),
            "fallback_reason": self.fallback_reason,
        }

    def describe(self) -> str:
        """One line naming the parser, and why it fell back if it did."""
        if self.parser == "gemini":
            return "parsed by Gemini"
        if self.fallback_reason:
            return f"parsed by the offline parser ({self.fallback_reason})"
        return "parsed by the offline parser"
