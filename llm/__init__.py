"""Story parsing (phase 2): a free-form story becomes one short sentence per panel, every
character named by full name, never by pronoun, with the characters of each panel listed.

Two parsers: Gemini (google-genai, structured JSON output, checked on return) when an API key
is in the environment, and a rule-based offline parser otherwise or whenever Gemini fails.

    >>> from llm import parse
    >>> [p.text for p in parse("Hugh Jackman smiled. He waved.", [("Hugh Jackman", "he")], offline=True)]
    ['Hugh Jackman smiled.', 'Hugh Jackman waved.']
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from llm.characters import (
    Character,
    CharacterLike,
    normalize_characters,
    parse_character_spec,
)
from llm.errors import StoryError
from llm.gemini import (
    GeminiError,
    GenAIClient,
    api_key_from_env,
    make_client,
    parse_gemini,
)
from llm.offline import MAX_STORY_CHARS, absent_characters, check_story, parse_offline
from llm.panel import Panel, ParseResult

__all__ = [
    "Character",
    "GeminiError",
    "MAX_STORY_CHARS",
    "Panel",
    "ParseResult",
    "StoryError",
    "parse",
    "parse_character_spec",
    "parse_story",
]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gemini-2.5-flash"
DEFAULT_TIMEOUT_S = 30.0


def _fallback(story: str, characters: list[Character], reason: str) -> ParseResult:
    log.info("story parser: using the offline parser (%s)", reason)
    result = parse_offline(story, characters)
    result.fallback_reason = reason
    return result


def parse_story(
    story: str,
    characters: Iterable[CharacterLike],
    *,
    offline: bool = False,
    client: GenAIClient | None = None,
    model: str | None = None,
    timeout_s: float | None = None,
    config: object | None = None,
    environ: Mapping[str, str] | None = None,
) -> ParseResult:
    """Parse a story into panels, saying which parser produced them.

    Gemini is used when ``client`` is given or an API key is set (``GEMINI_API_KEY``, else
    ``GOOGLE_API_KEY``) and ``offline`` is false. Without a key, or when the request fails or
    its reply fails a check, the offline parser is used and ``fallback_reason`` says why.

    Args:
        story: the free-form story (at most 20,000 characters).
        characters: ``[(full name, pronouns)]`` (pronouns "he", "she", "they", "he/him", ...),
            :class:`Character` objects or ``"Full Name:pronouns"`` specs.
        offline: use the offline parser only.
        client: an injected ``google.genai.Client``-like object (tests pass a fake).
        model, timeout_s: override the config's ``llm.model`` / ``llm.timeout_s``.
        config: an ``LLMConfig`` (``load_config(...).llm``); defaults: gemini-2.5-flash, 30 s.
        environ: where to read the key (default ``os.environ``).

    Raises:
        StoryError: empty or too long story; no, bad or duplicate characters.
    """
    text = check_story(story)
    chars = normalize_characters(characters)
    if offline:
        return parse_offline(text, chars)
    model = model or getattr(config, "model", None) or DEFAULT_MODEL
    timeout_s = float(timeout_s or getattr(config, "timeout_s", None) or DEFAULT_TIMEOUT_S)
    key = None
    if client is None:
        key = api_key_from_env(environ)
        if key is None:
            return _fallback(text, chars, "no GEMINI_API_KEY or GOOGLE_API_KEY set")
        try:
            client = make_client(key, timeout_s)
        except GeminiError as exc:
            return _fallback(text, chars, exc.reason)
    try:
        panels = parse_gemini(text, chars, client, model=model, timeout_s=timeout_s, secret=key)
    except GeminiError as exc:
        return _fallback(text, chars, exc.reason)
    absent = absent_characters(text, chars)
    shown = {n for p in panels for n in p.characters}
    warnings = [f"{name} never occurs in the story" for name in absent]
    warnings += [f"{c.name} is in no panel" for c in chars if c.name not in shown and c.name not in absent]
    return ParseResult(panels=panels, parser="gemini", warnings=warnings)


def parse(story: str, characters: Iterable[CharacterLike], **options: Any) -> list[Panel]:
    """The panels of :func:`parse_story` (same arguments), without the provenance."""
    return parse_story(story, characters, **options).panels
