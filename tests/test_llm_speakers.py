"""Who speaks each quoted line: the rules, the offline parser and Gemini's schema and checks."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from configs import load_config
from llm import Panel, parse_story
from llm.gemini import generation_config
from llm.speakers import find_speakers, normalise_quotes

ADA, ALAN = "Ada Lovelace", "Alan Turing"


@pytest.mark.parametrize("text, speakers", [
    ('Ada Lovelace said, "Hello."', [ADA]),
    ('"Hello," Ada Lovelace said.', [ADA]),
    ('"Hello," said Alan Turing to Ada Lovelace.', [ALAN]),
    ('Alan Turing: "Go!"', [ALAN]),
    ('Ada Lovelace asked Alan Turing, "Tea?" and Alan Turing replied, "Yes."', [ADA, ALAN]),
    ('"Hi," Ada Lovelace said, "how are you?"', [ADA, ADA]),
    ('“Look!” Alan Turing shouted at Ada Lovelace.', [ALAN]),
    ('Ada Lovelace waved at Alan Turing. "Hi"', [""]),          # two people, no attribution
    ("Ada Lovelace's cat said nothing.", []),                   # no quoted line
])
def test_speaker_rules(text, speakers):
    assert find_speakers(text, [ADA, ALAN]) == speakers


def test_a_lone_character_speaks_unattributed_lines_and_names_are_canonical():
    assert find_speakers('"Hi!"', [ADA]) == [ADA]
    assert find_speakers('"Hi!" ada  lovelace said.', [ADA, ALAN]) == [ADA]
    assert find_speakers('"Hi!"', []) == [""]


def test_single_quotes_next_to_a_speech_verb_become_double():
    assert normalise_quotes("Ada said, 'Hello'") == 'Ada said, "Hello"'
    assert normalise_quotes("'Hi,' Ada Lovelace whispered.") == '"Hi," Ada Lovelace whispered.'
    assert normalise_quotes("Ada Lovelace's cat isn't 'fine'.") == "Ada Lovelace's cat isn't 'fine'."


def test_offline_parser_marks_the_speaker():
    result = parse_story("Ada Lovelace met Alan Turing. Ada said, 'Hello'. "
                         '"Good morning," he replied.', [(ADA, "she"), (ALAN, "he")],
                         offline=True)
    assert result.parser == "offline"
    by_text = {p.text: p for p in result.panels}
    hello = next(p for p in result.panels if "Hello" in p.text)
    assert hello.text == 'Ada Lovelace said, "Hello".' and hello.speakers == [ADA]
    morning = next(p for p in result.panels if "Good morning" in p.text)
    assert morning.speakers == [ALAN] and morning.to_dict()["speakers"] == [ALAN]
    assert "speakers" not in next(p for p in by_text.values() if "met" in p.text).to_dict()
    assert Panel.from_dict(morning.to_dict()) == morning


class _Client:
    def __init__(self, reply: str) -> None:
        self.models = SimpleNamespace(generate_content=lambda **_: SimpleNamespace(text=reply))


def test_gemini_schema_asks_for_speakers_and_its_answer_is_checked():
    schema = generation_config("gemini-2.5-flash", 10, [ADA, ALAN]).response_schema
    panel = schema.properties["panels"].items
    assert panel.properties["speakers"].items.enum == [ADA, ALAN]
    assert "speakers" not in panel.required  # older replies without it still pass
    story = 'Ada Lovelace met Alan Turing. "Hello," Ada Lovelace said. "Hi," Alan Turing replied.'
    reply = {"panels": [
        {"text": "Ada Lovelace met Alan Turing.", "characters": [ADA, ALAN]},
        {"text": '"Hello," Ada Lovelace said to Alan Turing.', "characters": [ADA, ALAN],
         "speakers": [ADA]},
        {"text": '"Hi," Alan Turing replied to Ada Lovelace.', "characters": [ADA, ALAN]}]}
    result = parse_story(story, [(ADA, "she"), (ALAN, "he")], client=_Client(json.dumps(reply)),
                         config=load_config("tiny").llm)
    assert result.parser == "gemini", result.fallback_reason
    assert [p.speakers for p in result.panels] == [[], [ADA], [ALAN]]  # the last found by rule
