"""The Gemini story parser, through the google-genai SDK (``from google import genai``).

The older ``google-generativeai`` package is end-of-life (it says so at import) and retries for
minutes when offline, so it is not used.

The API key comes from the environment only (``GEMINI_API_KEY``, else ``GOOGLE_API_KEY``); it
is passed to the SDK and never logged, printed or put in a message. Every request has a
timeout (at most 30 s in all) and at most one retry; the reply is structured JSON (a response
schema) and is checked by :func:`llm.validate.check_panels` before it is accepted. Any failure
raises :class:`GeminiError`, whose ``reason`` is safe to show; :func:`llm.parse_story` then falls
back to the offline parser.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from llm.characters import Character
from llm.panel import Panel
from llm.validate import PanelCheckError, check_panels, panels_from_json

KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
MAX_TIMEOUT_S = 30.0
ATTEMPTS = 2  # the first try and one retry, for rate limits and server errors

SYSTEM_PROMPT = """\
You turn a short story into the panels of a comic.
Rules:
1. One short, simple sentence per panel, describing one event, in the order of the story.
2. Name every character by their full name exactly as listed, every time. Never refer to a
   character with a pronoun (he, she, they, him, her, them, his, hers, their, theirs, himself,
   herself, themselves) or with a first name or surname alone. A possessive uses the full
   name: "Taylor Swift's bag", "Hugh Jackman and Taylor Swift's day".
3. Stay close to the story: invent no event, object or character. Leave out what a picture
   cannot show (likes and dislikes, thoughts, backstory).
4. "characters" lists the full names of exactly the characters named in that panel's text.
5. Keep spoken words in double quotes with who says them ("Taylor Swift said, \"Hi!\"");
   "speakers" lists, for each quoted line of the text in order, the full name of its speaker.
Example. Characters: Hugh Jackman (he/him), Taylor Swift (she/her).
Story: Hugh Jackman was selecting an apple at a local grocery store when Taylor Swift, who
dislikes apples, reached for a banana nearby. They struck up a conversation and discovered
they were both headed to the same school. After paying for their purchases, they walked to
school together, chatting amiably about their day.
Panels:
- Hugh Jackman was selecting an apple at a local grocery store when Taylor Swift reached for a
  banana nearby. [Hugh Jackman, Taylor Swift]
- Hugh Jackman and Taylor Swift struck up a conversation and discovered Hugh Jackman and
  Taylor Swift were both headed to the same school. [Hugh Jackman, Taylor Swift]
- Hugh Jackman and Taylor Swift walked to school together, chatting amiably about Hugh Jackman
  and Taylor Swift's day. [Hugh Jackman, Taylor Swift]
Answer with JSON only."""


class GeminiError(RuntimeError):
    """Gemini could not be used or its reply was rejected; ``reason`` is one safe line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Models(Protocol):
    def generate_content(self, *, model: str, contents: Any, config: Any) -> Any: ...


class GenAIClient(Protocol):
    """What the parser needs of a ``google.genai.Client`` (tests inject a fake)."""

    models: _Models


def api_key_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The key from ``GEMINI_API_KEY``, else ``GOOGLE_API_KEY``; None when neither is set."""
    env = os.environ if environ is None else environ
    for variable in KEY_VARIABLES:
        value = (env.get(variable) or "").strip()
        if value:
            return value
    return None


def safe_message(text: str, secret: str | None = None, limit: int = 200) -> str:
    """One line, at most ``limit`` characters, with ``secret`` (and anything key-like) masked."""
    line = " ".join(str(text).split())
    if secret:
        line = line.replace(secret, "***")
    line = re.sub(r"AIza[0-9A-Za-z_\-]{10,}", "***", line)
    line = re.sub(r"(?i)(key=)[^&\s]+", r"\1***", line)
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _timeout_ms(timeout_s: float) -> int:
    """Per-attempt timeout in ms: the total (at most 30 s) shared by the attempts."""
    total = min(max(float(timeout_s), 1.0), MAX_TIMEOUT_S)
    return int(total * 1000 / ATTEMPTS)


def http_options(timeout_s: float) -> Any:
    """``types.HttpOptions`` with a timeout and a bounded retry."""
    from google.genai import types

    return types.HttpOptions(
        timeout=_timeout_ms(timeout_s),
        retry_options=types.HttpRetryOptions(
            attempts=ATTEMPTS, initial_delay=1.0, max_delay=2.0, http_status_codes=[429, 500, 502, 503, 504]
        ),
    )


def make_client(api_key: str, timeout_s: float = MAX_TIMEOUT_S) -> GenAIClient:
    """A real ``google.genai.Client`` for the Gemini Developer API.

    Raises:
        GeminiError: the SDK is missing or refuses the key.
    """
    try:
        from google import genai
    except ImportError:
        raise GeminiError("the google-genai package is not installed") from None
    try:
        return genai.Client(api_key=api_key, vertexai=False, http_options=http_options(timeout_s))
    except Exception as exc:  # noqa: BLE001 - any SDK failure means: use the offline parser
        raise GeminiError(f"could not create the Gemini client: {safe_message(str(exc), api_key)}") from None


def response_schema(names: Sequence[str]) -> Any:
    """The structured-output schema: ``{"panels": [{"text": str, "characters": [name, ...],
    "speakers": [name, ...]}]}`` (``speakers``: one per quoted line, optional)."""
    from google.genai import types

    panel = types.Schema(
        type=types.Type.OBJECT,
        properties={
            "text": types.Schema(type=types.Type.STRING, description="One sentence, full names only."),
            "characters": types.Schema(
                type=types.Type.ARRAY,
                items=types.Schema(type=types.Type.STRING, enum=list(names)),
                description="Full names of the characters named in text.",
            ),
            "speakers": types.Schema(
                type=types.Type.ARRAY,
                items=types.Schema(type=types.Type.STRING, enum=list(names)),
                description="For each double-quoted line in text, in order: who says it.",
            ),
        },
        required=["text", "characters"],
        property_ordering=["text", "characters", "speakers"],
    )
    return types.Schema(
        type=types.Type.OBJECT,
        properties={"panels": types.Schema(type=types.Type.ARRAY, items=panel, min_items=1)},
        required=["panels"],
    )


def generation_config(model: str, timeout_s: float, names: Sequence[str]) -> Any:
    """The ``GenerateContentConfig`` of a request: JSON reply, schema, timeout, bounded retry."""
    from google.genai import types

    extra: dict[str, Any] = {}
    if "flash" in model:
        extra["thinking_config"] = types.ThinkingConfig(thinking_budget=0)  # fast; the task is simple
    return types.GenerateContentConfig(
        system_instruction=SYSTEM_PROMPT,
        temperature=0.2,
        response_mime_type="application/json",
        response_schema=response_schema(names),
        http_options=http_options(timeout_s),
        **extra,
    )


def build_prompt(story: str, characters: Sequence[Character]) -> str:
    """The user message: the characters with their pronouns, then the story."""
    lines = ["Characters:"]
    for c in characters:
        pronouns = {"he": "he/him", "she": "she/her", "they": "they/them"}
        said = (
            ", ".join(pronouns[p] for p in ("he", "she", "they") if p in c.pronouns) or "pronouns not given"
        )
        lines.append(f"- {c.name} ({said})")
    lines += ["", "Story:", '"""', story.strip(), '"""']
    return "\n".join(lines)


def parse_gemini(
    story: str,
    characters: Sequence[Character],
    client: GenAIClient,
    *,
    model: str,
    timeout_s: float = MAX_TIMEOUT_S,
    secret: str | None = None,
) -> list[Panel]:
    """Ask Gemini for the panels of ``story`` and check its reply.

    Args:
        story: the (already checked) story.
        characters: the (already checked) characters.
        client: a ``google.genai.Client`` or anything with ``models.generate_content``.
        model: the model name (from the config's ``llm.model``).
        timeout_s: total time allowed (capped at 30 s).
        secret: the API key, only to mask it out of error messages.

    Raises:
        GeminiError: the request failed, or the reply is malformed or fails a check.
    """
    names = [c.name for c in characters]
    try:
        response = client.models.generate_content(
            model=model,
            contents=build_prompt(story, characters),
            config=generation_config(model, timeout_s, names),
        )
    except Exception as exc:  # noqa: BLE001 - network, timeout, quota, bad key ...
        raise GeminiError(
            f"Gemini request failed: {type(exc).__name__}: {safe_message(str(exc), secret)}"
        ) from None
    text = getattr(response, "text", None)
    if not isinstance(text, str) or not text.strip():
        raise GeminiError("Gemini returned an empty reply")
    try:
        panels = panels_from_json(text)
        return check_panels(panels, story, characters)
    except PanelCheckError as exc:
        raise GeminiError(f"Gemini reply rejected: {safe_message(str(exc), secret)}") from None
