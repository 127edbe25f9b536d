"""The Gemini path against a fake client: structured reply, checks, fallbacks, key handling."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

import llm
from configs import load_config
from llm import Panel, parse_story
from llm.characters import normalize_characters
from llm.gemini import (
    MAX_TIMEOUT_S,
    SYSTEM_PROMPT,
    api_key_from_env,
    build_prompt,
    generation_config,
    make_client,
    safe_message,
)

STORY = (
    "Hugh Jackman was selecting an apple at a local grocery store when Taylor Swift, who "
    "dislikes apples, reached for a banana nearby. They struck up a conversation and discovered "
    "they were both headed to the same school. After paying for their purchases, they walked to "
    "school together, chatting amiably about their day."
)
CHARACTERS = [("Hugh Jackman", "he"), ("Taylor Swift", "she")]
HJ, TS = "Hugh Jackman", "Taylor Swift"
GOOD = [
    {
        "text": "Hugh Jackman was selecting an apple at a local grocery store when Taylor Swift "
        "reached for a banana nearby.",
        "characters": [HJ, TS],
    },
    {
        "text": "Hugh Jackman and Taylor Swift struck up a conversation about the same school.",
        "characters": [HJ, TS],
    },
    {
        "text": "Hugh Jackman and Taylor Swift walked to school together, chatting amiably.",
        "characters": [HJ, TS],
    },
]
FAKE_KEY = "AIzaFAKE-test-key-0123456789"


class FakeModels:
    """Records each call; replies with ``reply`` (a string) or raises it (an exception)."""

    def __init__(self, reply):
        self.reply = reply
        self.calls: list[dict] = []

    def generate_content(self, *, model, contents, config):
        self.calls.append({"model": model, "contents": contents, "config": config})
        if isinstance(self.reply, BaseException):
            raise self.reply
        return SimpleNamespace(text=self.reply)


class FakeClient:
    def __init__(self, reply):
        self.models = FakeModels(reply)


def _reply(panels) -> str:
    return json.dumps({"panels": panels})


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)


def test_valid_structured_reply_is_used():
    client = FakeClient(_reply(GOOD))
    result = parse_story(STORY, CHARACTERS, client=client, config=load_config("tiny").llm)
    assert result.parser == "gemini"
    assert result.fallback_reason is None
    assert result.warnings == []
    assert [p.to_dict() for p in result.panels] == GOOD
    assert result.describe() == "parsed by Gemini"


def test_request_uses_config_model_schema_timeout_and_bounded_retry():
    client = FakeClient(_reply(GOOD))
    parse_story(STORY, CHARACTERS, client=client, config=load_config("tiny").llm)
    (call,) = client.models.calls
    assert call["model"] == "gemini-2.5-flash"
    assert STORY in call["contents"]
    assert "Hugh Jackman (he/him)" in call["contents"] and "Taylor Swift (she/her)" in call["contents"]
    config = call["config"]
    assert config.response_mime_type == "application/json"
    panels = config.response_schema.properties["panels"]
    assert panels.items.required == ["text", "characters"]
    assert panels.items.properties["characters"].items.enum == [HJ, TS]
    assert config.http_options.timeout <= 30_000
    attempts = config.http_options.retry_options.attempts
    assert 1 <= attempts <= 2
    assert attempts * config.http_options.timeout <= MAX_TIMEOUT_S * 1000
    assert "Never refer to a character with a pronoun" in " ".join(config.system_instruction.split())


def test_model_and_timeout_overrides_are_capped():
    config = generation_config("gemini-2.5-pro", 600, [HJ])
    assert config.http_options.timeout * config.http_options.retry_options.attempts <= 30_000
    assert config.thinking_config is None  # only flash models get the thinking budget switched off
    assert generation_config("gemini-2.5-flash", 10, [HJ]).thinking_config.thinking_budget == 0


@pytest.mark.parametrize(
    "reply, reason",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"result": []}), "no 'panels' list"),
        (_reply([]), "no panels"),
        (_reply([{"text": 5, "characters": []}]), "'text' must be a non-empty string"),
        (
            _reply([{"text": "Hugh Jackman waved at Tom Hardy.", "characters": [HJ, "Tom Hardy"]}]),
            "unknown character 'Tom Hardy'",
        ),
        (
            _reply(
                [
                    {
                        "text": "Hugh Jackman and Taylor Swift discovered they were both headed to school.",
                        "characters": [HJ, TS],
                    }
                ]
            ),
            "still contains the pronoun 'they'",
        ),
        (
            _reply([{"text": "Hugh Jackman waved at Taylor.", "characters": [HJ]}]),
            "calls Taylor Swift 'Taylor' instead of the full name",
        ),
        (
            _reply([{"text": "Hugh Jackman selected an apple.", "characters": [HJ, TS]}]),
            "lists Taylor Swift but does not name them",
        ),
        (
            _reply(
                [{"text": "Hugh Jackman flew a purple dragon over volcanic mountains.", "characters": [HJ]}]
            ),
            "strays from the story",
        ),
        (_reply([GOOD[2], GOOD[0]]), "out of the story's order"),
        (
            _reply(
                [
                    {
                        "text": "Hugh Jackman selected an apple. Taylor Swift reached for a banana.",
                        "characters": [HJ, TS],
                    }
                ]
            ),
            "more than one sentence",
        ),
    ],
)
def test_bad_reply_falls_back_to_offline(reply, reason):
    result = parse_story(STORY, CHARACTERS, client=FakeClient(reply))
    assert result.parser == "offline"
    assert result.fallback_reason is not None and reason in result.fallback_reason
    assert result.fallback_reason.startswith("Gemini reply rejected")
    assert len(result.panels) == 3  # the offline parser's panels
    assert "offline parser" in result.describe() and reason in result.describe()


def test_invented_character_is_rejected():
    story = "Hugh Jackman bought an apple."
    reply = _reply([{"text": "Hugh Jackman and Taylor Swift bought an apple.", "characters": [HJ, TS]}])
    result = parse_story(story, CHARACTERS, client=FakeClient(reply))
    assert result.parser == "offline"
    assert "names Taylor Swift, who is not in the story" in result.fallback_reason
    assert "Taylor Swift never occurs in the story" in result.warnings


def test_unlisted_name_in_text_is_added_to_characters():
    reply = _reply([dict(GOOD[0], characters=[HJ]), GOOD[1], GOOD[2]])
    result = parse_story(STORY, CHARACTERS, client=FakeClient(reply))
    assert result.parser == "gemini"
    assert result.panels[0].characters == [HJ, TS]


def test_empty_reply_falls_back():
    result = parse_story(STORY, CHARACTERS, client=FakeClient(""))
    assert result.parser == "offline"
    assert result.fallback_reason == "Gemini returned an empty reply"


def test_timeout_falls_back_without_leaking_the_key(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", FAKE_KEY)
    client = FakeClient(TimeoutError(f"timed out calling https://x/?key={FAKE_KEY} with {FAKE_KEY}"))
    monkeypatch.setattr(llm, "make_client", lambda key, timeout_s: client)
    result = parse_story(STORY, CHARACTERS)
    assert result.parser == "offline"
    assert result.fallback_reason.startswith("Gemini request failed: TimeoutError")
    assert FAKE_KEY not in result.fallback_reason
    assert FAKE_KEY not in json.dumps(result.to_dict())
    assert len(client.models.calls) == 1


def test_missing_key_uses_offline_without_building_a_client(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("no client may be built without a key")

    monkeypatch.setattr(llm, "make_client", boom)
    result = parse_story(STORY, CHARACTERS)
    assert result.parser == "offline"
    assert result.fallback_reason == "no GEMINI_API_KEY or GOOGLE_API_KEY set"
    assert result.panels[0].text.startswith("Hugh Jackman was selecting an apple")


def test_offline_flag_never_calls_gemini():
    client = FakeClient(_reply(GOOD))
    result = parse_story(STORY, CHARACTERS, client=client, offline=True)
    assert result.parser == "offline" and result.fallback_reason is None
    assert client.models.calls == []


def test_key_comes_from_gemini_then_google_variable(monkeypatch):
    seen = []
    monkeypatch.setattr(
        llm, "make_client", lambda key, timeout_s: seen.append((key, timeout_s)) or FakeClient(_reply(GOOD))
    )
    monkeypatch.setenv("GOOGLE_API_KEY", "google-key")
    assert parse_story(STORY, CHARACTERS).parser == "gemini"
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-key")
    parse_story(STORY, CHARACTERS, timeout_s=12)
    assert seen == [("google-key", 30.0), ("gemini-key", 12.0)]
    assert api_key_from_env({"GEMINI_API_KEY": " ", "GOOGLE_API_KEY": ""}) is None


def test_real_sdk_client_is_built_without_network():
    client = make_client(FAKE_KEY, 30)
    assert hasattr(client.models, "generate_content")
    assert FAKE_KEY not in repr(client)


def test_bad_input_is_an_error_even_with_a_client():
    with pytest.raises(llm.StoryError):
        parse_story("", CHARACTERS, client=FakeClient(_reply(GOOD)))


def test_safe_message_masks_keys_and_stays_one_short_line():
    message = safe_message(
        f"bad key {FAKE_KEY}\nkey=abc123&x=1 AIzaSyAAAAAAAAAAAAAAAAAAAA" + "x" * 500, FAKE_KEY
    )
    assert FAKE_KEY not in message and "abc123" not in message and "AIzaSy" not in message
    assert "\n" not in message and len(message) <= 200


def test_prompt_lists_characters_and_pronouns():
    prompt = build_prompt(
        STORY, normalize_characters([("Hugh Jackman", "he"), ("Alex Kim", "they/them"), ("Zendaya", "")])
    )
    assert "- Hugh Jackman (he/him)" in prompt
    assert "- Alex Kim (they/them)" in prompt
    assert "- Zendaya (pronouns not given)" in prompt
    assert prompt.rstrip().endswith('"""')
    assert "full name" in SYSTEM_PROMPT


def test_user_edited_panels_can_be_checked():
    from llm.validate import PanelCheckError, check_panels

    characters = normalize_characters(CHARACTERS)
    assert check_panels([Panel(**GOOD[0])], STORY, characters)[0].characters == [HJ, TS]
    with pytest.raises(PanelCheckError, match="pronoun 'her'"):
        check_panels([Panel("Hugh Jackman waved at her.", [HJ])], STORY, characters)
