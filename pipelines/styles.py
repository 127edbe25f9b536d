"""Panel styles: the seed's style keywords and named prompt templates (``configs/styles.yaml``).

A panel prompt is built in two steps, exactly as the seed's UI does and then some:

1. keywords are appended to the sentence: ``"sentence, kw1, kw2"``;
2. the style template wraps the result: ``"{prompt}, comic book style, ..."``.

The style's negative is joined to the user's negative prompt with ``", "``. Style and keyword
names are matched case-insensitively, with ``-`` and ``_`` read as spaces for style names; an
unknown name raises :class:`StyleError` naming the close matches and the choices.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Iterable, Mapping

import yaml

STYLES_FILE = Path(__file__).resolve().parent.parent / "configs" / "styles.yaml"
PLACEHOLDER = "{prompt}"
NO_STYLE = "none"


class StyleError(ValueError):
    """An unknown style or keyword, or a malformed styles file (one-line message)."""


@dataclass(frozen=True)
class Style:
    """A named prompt template.

    Attributes:
        name: canonical lower-case name ("comic book").
        label: display name ("Comic book").
        prompt: template holding ``{prompt}`` once.
        negative: words the style wants kept out ("" for none).
    """

    name: str
    label: str
    prompt: str = PLACEHOLDER
    negative: str = ""

    def apply(self, sentence: str, keywords: Iterable[str] = ()) -> str:
        """``sentence`` with ``keywords`` appended (", "-joined), wrapped in the template."""
        body = ", ".join([sentence.strip(), *[k for k in keywords if k]])
        return self.prompt.replace(PLACEHOLDER, body)

    def negative_for(self, user_negative: str = "") -> str:
        """The style negative joined with the user's negative prompt (either may be empty)."""
        return ", ".join(part.strip() for part in (user_negative, self.negative) if part and part.strip())


def _norm_style(name: str) -> str:
    return re.sub(r"[\s_-]+", " ", name.strip().lower())


def _norm_keyword(keyword: str) -> str:
    return re.sub(r"\s+", " ", keyword.strip().lower())


def _unknown(kind: str, value: str, choices: Iterable[str]) -> StyleError:
    choices = list(choices)
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return StyleError(f"unknown {kind} '{value}'{hint}; choose from: {', '.join(choices)}")


@dataclass(frozen=True)
class StyleBook:
    """Every style and keyword the app offers.

    Attributes:
        keywords: the seed's style keywords in their canonical spelling (37 of them).
        styles: canonical name -> :class:`Style` (read-only mapping).
        default_style: the style used when none is asked for.
    """

    keywords: tuple[str, ...]
    styles: Mapping[str, Style] = field(default_factory=dict)
    default_style: str = NO_STYLE

    @cached_property
    def _canonical_keywords(self) -> dict[str, str]:
        """Normalised keyword -> canonical spelling (built once per book)."""
        return {_norm_keyword(k): k for k in self.keywords}

    def names(self) -> list[str]:
        """Canonical style names, in file order."""
        return list(self.styles)

    def style(self, name: str | None) -> Style:
        """The style called ``name`` (None/"" -> :attr:`default_style`); StyleError if unknown."""
        if name is None or not name.strip():
            name = self.default_style
        key = _norm_style(name)
        if key not in self.styles:
            raise _unknown("style", name, self.styles)
        return self.styles[key]

    def keyword_list(self, keywords: str | Iterable[str] | None) -> list[str]:
        """Validate keywords (a list, or one comma-separated string) -> canonical spellings.

        Order is kept, duplicates dropped; StyleError on an unknown keyword.
        """
        if keywords is None:
            return []
        items = keywords.split(",") if isinstance(keywords, str) else list(keywords)
        canonical = self._canonical_keywords
        out: list[str] = []
        for item in items:
            if not isinstance(item, str):
                raise StyleError(f"a style keyword must be text, got {item!r}")
            if not item.strip():
                continue
            key = _norm_keyword(item)
            if key not in canonical:
                raise _unknown("style keyword", item.strip(), self.keywords)
            if canonical[key] not in out:
                out.append(canonical[key])
        return out

    def compose(self, sentence: str, style: str | None = None, keywords: Iterable[str] = (),
                negative_prompt: str = "") -> tuple[str, str]:
        """(prompt, negative prompt) for one panel sentence; validates style and keywords."""
        chosen = self.style(style)
        return chosen.apply(sentence, self.keyword_list(keywords)), chosen.negative_for(negative_prompt)


def parse_style_book(raw: object, source: str = "styles") -> StyleBook:
    """Build a :class:`StyleBook` from the YAML mapping; StyleError naming what is wrong."""
    if not isinstance(raw, dict):
        raise StyleError(f"{source}: expected a mapping with 'keywords' and 'styles'")
    keywords = raw.get("keywords") or []
    if not isinstance(keywords, list) or not all(isinstance(k, str) and k.strip() for k in keywords):
        raise StyleError(f"{source}: 'keywords' must be a list of non-empty strings")
    styles: dict[str, Style] = {}
    entries = raw.get("styles") or {}
    if not isinstance(entries, dict) or not entries:
        raise StyleError(f"{source}: 'styles' must be a non-empty mapping")
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            raise StyleError(f"{source}: style '{name}' must be a mapping")
        template = entry.get("prompt", PLACEHOLDER)
        if not isinstance(template, str) or template.count(PLACEHOLDER) != 1:
            raise StyleError(f"{source}: style '{name}' prompt must contain {PLACEHOLDER} exactly once")
        negative = entry.get("negative", "") or ""
        if not isinstance(negative, str):
            raise StyleError(f"{source}: style '{name}' negative must be a string")
        key = _norm_style(str(name))
        styles[key] = Style(name=key, label=str(entry.get("label", name)), prompt=template,
                            negative=negative)
    default = _norm_style(str(raw.get("default_style", NO_STYLE)))
    if default not in styles:
        raise StyleError(f"{source}: default_style '{default}' is not a style")
    return StyleBook(keywords=tuple(k.strip() for k in keywords),
                     styles=MappingProxyType(styles), default_style=default)


@lru_cache(maxsize=4)
def load_style_book(path: str | Path | None = None) -> StyleBook:
    """Read ``configs/styles.yaml`` (or ``path``) once per process; the book is immutable."""
    file = Path(path) if path is not None else STYLES_FILE
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise StyleError(f"{file}: cannot read styles ({type(exc).__name__})") from None
    return parse_style_book(raw, str(file))


__all__ = ["NO_STYLE", "STYLES_FILE", "Style", "StyleBook", "StyleError", "load_style_book",
           "parse_style_book"]
