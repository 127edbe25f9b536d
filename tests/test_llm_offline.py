"""The offline story parser: the seed's example, the annotated story set, and the rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm import (
    Character,
    Panel,
    ParseResult,
    StoryError,
    parse,
    parse_character_spec,
    parse_story,
)
from llm.characters import normalize_characters, parse_pronouns
from llm.evaluate import evaluate
from llm.evaluate import main as evaluate_main
from llm.offline import PRONOUN_RE, analyze_story, names_in, parse_offline
from llm.text import join_names, possessive, split_sentences

STORIES = Path(__file__).parent / "data" / "stories"
DEV = sorted(STORIES.glob("*.json"))
HELDOUT = sorted(STORIES.glob("heldout*/*.json"))

SEED_STORY = (
    "Hugh Jackman was selecting an apple at a local grocery store when Taylor Swift, who "
    "dislikes apples, reached for a banana nearby. They struck up a conversation and discovered "
    "they were both headed to the same school. After paying for their purchases, they walked to "
    "school together, chatting amiably about their day."
)
SEED_CHARACTERS = [("Hugh Jackman", "he"), ("Taylor Swift", "she")]


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the seed


def test_seed_example_gives_the_three_panels_of_phase_2():
    result = parse_story(SEED_STORY, SEED_CHARACTERS)
    assert result.parser == "offline"
    assert result.fallback_reason == "no GEMINI_API_KEY or GOOGLE_API_KEY set"
    assert result.warnings == []
    texts = [p.text for p in result.panels]
    assert texts == [
        "Hugh Jackman was selecting an apple at a local grocery store when Taylor Swift reached for a banana nearby.",
        "Hugh Jackman and Taylor Swift struck up a conversation and discovered Hugh Jackman and Taylor Swift "
        "were both headed to the same school.",
        "Hugh Jackman and Taylor Swift walked to school together, chatting amiably about Hugh Jackman and "
        "Taylor Swift's day.",
    ]
    for panel in result.panels:
        assert panel.characters == ["Hugh Jackman", "Taylor Swift"]
        assert PRONOUN_RE.search(panel.text) is None
        assert "dislikes" not in panel.text  # the non-visual who-clause is gone


def test_parse_returns_panels_only():
    panels = parse(SEED_STORY, SEED_CHARACTERS)
    assert [type(p) for p in panels] == [Panel] * 3
    assert panels[0].to_dict() == {
        "text": "Hugh Jackman was selecting an apple at a local grocery store when Taylor Swift "
        "reached for a banana nearby.",
        "characters": ["Hugh Jackman", "Taylor Swift"],
    }


# --------------------------------------------------------------------------- the story set


@pytest.mark.parametrize("path", DEV, ids=[p.stem for p in DEV])
def test_story_set_panels(path):
    data = _load(path)
    result = parse_offline(data["story"], [tuple(c) for c in data["characters"]])
    assert [p.to_dict() for p in result.panels] == data["expected_panels"]
    known = {c[0] for c in data["characters"]}
    for panel in result.panels:
        assert PRONOUN_RE.search(panel.text) is None, panel.text
        assert set(panel.characters) <= known
        assert panel.characters == names_in(panel.text, sorted(known))
        assert panel.text[0].isupper() or panel.text[0] == '"'


@pytest.mark.parametrize("path", DEV, ids=[p.stem for p in DEV])
def test_story_set_pronoun_resolutions(path):
    data = _load(path)
    analysis = analyze_story(data["story"], [tuple(c) for c in data["characters"]])
    got = [(r.pronoun, set(r.referents)) for r in analysis.resolutions]
    assert got == [(e["pronoun"], set(e["referents"])) for e in data["pronouns"]]


def test_story_set_covers_the_required_cases():
    stories = [_load(p) for p in DEV]
    counts = {len(s["characters"]) for s in stories}
    assert {1, 2, 3} <= counts
    pronoun_specs = {c[1] for s in stories for c in s["characters"]}
    assert {"they", "they/them"} & pronoun_specs
    assert any('"' in s["story"] for s in stories)  # dialogue
    assert any("Dr." in s["story"] and "U.S." in s["story"] for s in stories)  # abbreviations
    assert len(stories) >= 13


@pytest.mark.parametrize("path", HELDOUT, ids=[p.stem for p in HELDOUT])
def test_heldout_stories_give_consistent_panels(path):
    data = _load(path)
    result = parse_offline(data["story"], [tuple(c) for c in data["characters"]])
    names = [c[0] for c in data["characters"]]
    assert result.panels
    for panel in result.panels:
        assert panel.characters == names_in(panel.text, names)
    # a pronoun is left in a text only when a warning says so
    left = [p.text for p in result.panels if PRONOUN_RE.search(p.text)]
    if left:
        assert any("left as written" in w for w in result.warnings)


def test_accuracy_on_the_story_sets():
    assert evaluate([STORIES]).accuracy == 1.0  # the development set the rules were written on
    heldout = evaluate([STORIES / "heldout", STORIES / "heldout2"])
    assert heldout.total == 50
    assert heldout.accuracy >= 0.85  # measured 44/50 = 0.88 (docs/STORY_PARSER.md)


def test_evaluate_command_prints_the_accuracy(capsys):
    assert evaluate_main([str(STORIES)]) == 0
    out = capsys.readouterr().out
    assert "48/48 = 100.0%" in out
    assert "they" in out


# --------------------------------------------------------------------------- resolution rules


def _texts(story, characters):
    return [p.text for p in parse(story, characters, offline=True)]


def test_first_name_and_surname_become_the_full_name_with_possessive():
    texts = _texts("Taylor waved. Swift's guitar was red. Taylor Swift smiled.", [("Taylor Swift", "she")])
    assert texts == ["Taylor Swift waved.", "Taylor Swift's guitar was red.", "Taylor Swift smiled."]


def test_his_becomes_the_possessive_full_name():
    assert _texts("Hugh Jackman lost his keys.", [("Hugh Jackman", "he")]) == [
        "Hugh Jackman lost Hugh Jackman's keys."
    ]


def test_they_after_two_characters_means_both_and_they_them_character_alone_is_singular():
    both = _texts("Hugh Jackman met Taylor Swift. They laughed.", SEED_CHARACTERS)
    assert both[1] == "Hugh Jackman and Taylor Swift laughed."
    alone = _texts("Alex Kim opened the door. They were tired.", [("Alex Kim", "they/them")])
    assert alone[1] == "Alex Kim was tired."


def test_they_reaches_back_over_sentences_with_one_character():
    texts = _texts("Hugh Jackman met Taylor Swift. Taylor smiled. They left.", SEED_CHARACTERS)
    assert texts[2] == "Hugh Jackman and Taylor Swift left."


def test_three_names_are_joined_with_commas_and_and():
    assert join_names(["A B", "C D", "E F"]) == "A B, C D and E F"
    assert join_names(["A B", "C D"]) == "A B and C D"
    assert possessive(join_names(["A B", "C D"])) == "A B and C D's"


def test_contractions_are_expanded():
    texts = _texts(
        "Emma Stone is here. She's tired. She'll sleep soon. He'd been waiting.",
        [("Emma Stone", "she"), ("Ryan Gosling", "he")],
    )
    # "He" has no antecedent: left as written, with a warning
    assert texts[:3] == ["Emma Stone is here.", "Emma Stone is tired.", "Emma Stone will sleep soon."]
    result = parse_story(
        "Emma Stone is here. He'd been waiting.",
        [("Emma Stone", "she"), ("Ryan Gosling", "he")],
        offline=True,
    )
    assert result.panels[1].text == "He'd been waiting."
    assert any("could not tell who 'He'" in w for w in result.warnings)
    assert "Ryan Gosling never occurs in the story" in result.warnings


def test_reflexives():
    characters = [("Hugh Jackman", "he")]
    assert _texts("Hugh Jackman himself cooked dinner.", characters) == ["Hugh Jackman cooked dinner."]
    assert _texts("Hugh Jackman walked home by himself.", characters) == ["Hugh Jackman walked home alone."]
    assert _texts("Hugh Jackman poured himself a drink.", characters) == ["Hugh Jackman poured a drink."]
    assert _texts("Hugh Jackman looked at himself in the mirror.", characters) == [
        "Hugh Jackman looked at Hugh Jackman in the mirror."
    ]


def test_her_as_object_and_as_possessive():
    characters = [("Emma Watson", "she"), ("Daniel Radcliffe", "he")]
    texts = _texts(
        "Emma Watson waved. Daniel Radcliffe gave her a book and helped her find her seat.", characters
    )
    assert (
        texts[1] == "Daniel Radcliffe gave Emma Watson a book and helped Emma Watson find Emma Watson's seat."
    )


def test_object_pronoun_does_not_refer_to_its_own_subject():
    characters = [("Chris Evans", "he"), ("Mark Ruffalo", "he")]
    texts = _texts("Mark Ruffalo dropped a cup. Chris Evans handed him a napkin.", characters)
    assert texts[1] == "Chris Evans handed Mark Ruffalo a napkin."


def test_characters_without_pronouns_match_any_pronoun():
    texts = _texts("Robin Hood drew a bow. She aimed.", [("Robin Hood", "")])
    assert texts == ["Robin Hood drew a bow.", "Robin Hood aimed."]


def test_shared_surname_is_left_with_a_warning():
    result = parse_story(
        "Marie Curie and Pierre Curie worked. Curie smiled.",
        [("Marie Curie", "she"), ("Pierre Curie", "he")],
        offline=True,
    )
    assert result.panels[1].text == "Curie smiled."
    assert any("'Curie' could be Marie Curie or Pierre Curie" in w for w in result.warnings)


def test_a_short_name_followed_by_another_capitalised_word_is_someone_else():
    texts = _texts("Sam Taylor sang. Taylor Swift sang too.", [("Sam Taylor", "they")])
    assert texts[1] == "Taylor Swift sang too."


def test_visible_who_clause_is_kept_and_sentence_start_is_capitalised():
    texts = _texts(
        "Tom Holland, who wore a hat, ran. Before leaving, the dog barked.", [("Tom Holland", "he")]
    )
    assert texts == ["Tom Holland, who wore a hat, ran.", "The dog barked."]


def test_leading_after_clause_is_dropped_and_capitalised():
    texts = _texts(
        "Tom Holland bought bread. After paying for the bread, he went home.", [("Tom Holland", "he")]
    )
    assert texts[1] == "Tom Holland went home."


def test_full_names_in_other_case_are_normalised():
    assert _texts("hugh jackman smiled.", [("Hugh Jackman", "he")]) == ["Hugh Jackman smiled."]


def test_sentence_without_characters_is_a_panel_with_no_characters():
    panels = parse("The rain fell. Hugh Jackman opened an umbrella.", [("Hugh Jackman", "he")], offline=True)
    assert panels[0] == Panel("The rain fell.", [])


# --------------------------------------------------------------------------- sentence splitting


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Dr. Lee arrived. Mr. Park left.", ["Dr. Lee arrived.", "Mr. Park left."]),
        (
            "She moved to the U.S. Army base. Then she rested.",
            ["She moved to the U.S. Army base.", "Then she rested."],
        ),
        ("He lives in the U.S. He likes it.", ["He lives in the U.S.", "He likes it."]),
        ("They met at 9 a.m. on Monday. It rained.", ["They met at 9 a.m. on Monday.", "It rained."]),
        ("J. K. Rowling wrote. She smiled.", ["J. K. Rowling wrote.", "She smiled."]),
        ('"Run!" Tom Hardy shouted. He ran.', ['"Run!" Tom Hardy shouted.', "He ran."]),
        ('"Where?" she asked. He pointed.', ['"Where?" she asked.', "He pointed."]),
        (
            'Anna said, "I am tired. Let us go." Ben agreed.',
            ['Anna said, "I am tired. Let us go."', "Ben agreed."],
        ),
        ("“Hello.” Ben waved. Anna nodded!", ["“Hello.” Ben waved.", "Anna nodded!"]),
        ("Wait... What was that? Nothing.", ["Wait...", "What was that?", "Nothing."]),
        ("A title\n\nThe story starts here. No end", ["A title", "The story starts here.", "No end"]),
    ],
)
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


# --------------------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    "story, characters, message",
    [
        ("", SEED_CHARACTERS, "the story is empty"),
        ("   \n ", SEED_CHARACTERS, "the story is empty"),
        ("x" * 20_001, SEED_CHARACTERS, "too long"),
        ("1234 5678.", SEED_CHARACTERS, "no words"),
        ("Hugh Jackman smiled.", [], "no characters"),
        ("Hugh Jackman smiled.", [("Hugh Jack$man", "he")], "bad character name"),
        ("Agent 47 smiled.", [("47", "he")], "bad character name"),  # digits need a letter too
        ("Hugh Jackman smiled.", [("A B C D E", "he")], "bad character name"),
        ("Hugh Jackman smiled.", [("Hugh Jackman", "it")], "unknown pronoun 'it'"),
        ("Hugh Jackman smiled.", [("Hugh Jackman", "he"), ("hugh  jackman", "he")], "given twice"),
        ("Hugh Jackman smiled.", [("Hugh Jackman", "he", "x")], "bad character"),
    ],
)
def test_bad_input_raises_story_error_with_one_line(story, characters, message):
    with pytest.raises(StoryError) as info:
        parse_story(story, characters)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_a_character_who_never_occurs_is_a_warning_not_a_failure():
    result = parse_story("Hugh Jackman smiled.", SEED_CHARACTERS, offline=True)
    assert result.panels == [Panel("Hugh Jackman smiled.", ["Hugh Jackman"])]
    assert result.warnings == ["Taylor Swift never occurs in the story"]


def test_character_specs_and_pronouns():
    assert parse_character_spec("Hugh Jackman:he") == Character("Hugh Jackman", frozenset({"he"}))
    assert parse_character_spec("  Taylor   Swift : she/her ") == Character(
        "Taylor Swift", frozenset({"she"})
    )
    assert parse_character_spec("Miles O'Brien").pronouns == frozenset()
    assert parse_character_spec("Jean-Luc Picard:he/they").pronouns == frozenset({"he", "they"})
    assert parse_character_spec("Martin Luther King Jr.:he").surname == "King"
    assert parse_pronouns("They/Them") == frozenset({"they"})
    assert normalize_characters(["Zendaya:she"])[0].first_name is None
    with pytest.raises(StoryError):
        parse_character_spec(":he")


def test_panel_round_trip_and_bad_dicts():
    panel = Panel("Hugh Jackman waved.", ["Hugh Jackman"])
    assert Panel.from_dict(panel.to_dict()) == panel
    assert json.loads(json.dumps(panel.to_dict())) == {
        "text": "Hugh Jackman waved.",
        "characters": ["Hugh Jackman"],
    }
    for bad in ({"characters": []}, {"text": "  "}, {"text": "x", "characters": "Hugh"}, ["x"]):
        with pytest.raises(ValueError):
            Panel.from_dict(bad)  # type: ignore[arg-type]


def test_parse_result_describes_its_parser():
    assert ParseResult([], "gemini").describe() == "parsed by Gemini"
    assert ParseResult([], "offline").describe() == "parsed by the offline parser"
    assert "no key" in ParseResult([], "offline", fallback_reason="no key").describe()
    assert ParseResult([Panel("a.", [])], "offline").to_dict()["panels"] == [{"text": "a.", "characters": []}]


# ----------------------------------------------------------------------------- groups, numbers


@pytest.mark.parametrize("story, expected", [
    ("Ada Lovelace met Grace Hopper and Alan Turing. The two women laughed.",
     ("Ada Lovelace and Grace Hopper laughed.", ["Ada Lovelace", "Grace Hopper"])),
    ("Alan Turing and Mark Twain arrived. Ada Lovelace waved. Both brothers sat down.",
     ("Alan Turing and Mark Twain sat down.", ["Alan Turing", "Mark Twain"])),
    ("Alan Turing and Mark Twain arrived. Ada Lovelace waved at the twins.",
     ("Ada Lovelace waved at Alan Turing and Mark Twain.",
      ["Ada Lovelace", "Alan Turing", "Mark Twain"])),
    ("Ada Lovelace and Grace Hopper met Alan Turing. The women's hats were red.",
     ("Ada Lovelace and Grace Hopper's hats were red.", ["Ada Lovelace", "Grace Hopper"])),
])
def test_group_noun_phrases_become_the_full_names(story, expected):
    cast = [("Ada Lovelace", "she"), ("Grace Hopper", "she"), ("Alan Turing", "he"),
            ("Mark Twain", "he")]
    panels = parse_offline(story, cast).panels
    assert (panels[-1].text, panels[-1].characters) == (expected[0], expected[1])


def test_a_group_nobody_fits_is_left_with_a_warning():
    result = parse_offline("Ada Lovelace waved. The two brothers laughed.", [("Ada Lovelace", "she")])
    assert result.panels[1].text == "The two brothers laughed."
    assert any("could not tell who 'The two brothers'" in w for w in result.warnings)


@pytest.mark.parametrize("story, sentences", [
    ("Grace Hopper programmed the Harvard Mark I. She smiled.",
     ["Grace Hopper programmed the Harvard Mark I.", "She smiled."]),
    ("The Mark I. computer filled the room. Grace Hopper laughed.",
     ["The Mark I. computer filled the room.", "Grace Hopper laughed."]),
    ("Henry VIII. was a king. He laughed.", ["Henry VIII. was a king.", "He laughed."]),
    ("Ada V. Smith waved. She left.", ["Ada V. Smith waved.", "She left."]),
])
def test_regnal_and_model_numbers_end_a_sentence_only_before_an_opener(story, sentences):
    assert split_sentences(story, ["grace", "hopper"]) == sentences
