"""Held-out sentences for "both of them", "the two of them", "all three", "everyone" (issue 24,
item 7): written before the rules in :mod:`llm.offline` and never used while writing them. Each
phrase becomes the named people in grammatical form, never "Both of Grace Hopper and ..."."""

from __future__ import annotations

import pytest

from llm.offline import parse_offline

CAST = [("Grace Hopper", "she"), ("Eileen Collins", "she"), ("Ada Lovelace", "she"),
        ("Alan Turing", "he"), ("Mark Twain", "he")]


@pytest.mark.parametrize("story, last", [
    ("Grace Hopper met Eileen Collins at the launch pad. Both of them waved.",
     "Grace Hopper and Eileen Collins waved."),
    ("Ada Lovelace and Alan Turing sat by the fire. The two of them laughed at the joke.",
     "Ada Lovelace and Alan Turing laughed at the joke."),
    (("Grace Hopper, Ada Lovelace and Eileen Collins boarded the train. All three smiled at the "
      "camera."), "Grace Hopper, Ada Lovelace and Eileen Collins smiled at the camera."),
    ("Grace Hopper greeted Ada Lovelace. Eileen Collins arrived late. Everyone sat down to eat.",
     "Grace Hopper, Ada Lovelace and Eileen Collins sat down to eat."),
    ("Alan Turing and Mark Twain played chess. Ada Lovelace watched both of them.",
     "Ada Lovelace watched Alan Turing and Mark Twain."),
    ("Grace Hopper and Eileen Collins walked in. Everybody was happy.",
     "Grace Hopper and Eileen Collins were happy."),
    ("Ada Lovelace, Grace Hopper and Alan Turing met. All of them wore hats.",
     "Ada Lovelace, Grace Hopper and Alan Turing wore hats."),
    ("Grace Hopper and Alan Turing arrived. Ada Lovelace waved at everyone.",
     "Ada Lovelace waved at Grace Hopper and Alan Turing."),
])
def test_quantifiers_become_the_named_people(story, last):
    panels = parse_offline(story, CAST).panels
    assert panels[-1].text == last
    assert "of Grace" not in panels[-1].text and "of Ada" not in panels[-1].text


@pytest.mark.parametrize("story, last", [
    ("Grace Hopper and Eileen Collins sat down. Grace Hopper raised both hands.",
     "Grace Hopper raised both hands."),
    ("Grace Hopper met Eileen Collins. They were both tired.",
     "Grace Hopper and Eileen Collins were both tired."),
])
def test_both_that_is_not_about_people_stays(story, last):
    assert parse_offline(story, CAST).panels[-1].text == last


def test_too_few_people_for_the_number_is_left_with_a_warning():
    result = parse_offline("Grace Hopper waved. All three laughed.", CAST)
    assert result.panels[1].text == "All three laughed."
    assert any("could not tell who 'All three'" in w for w in result.warnings)


@pytest.mark.parametrize("story, last", [  # sentences used while writing the rules (not held out)
    ("Grace Hopper met Eileen Collins. Both teams played.", "Both teams played."),
    ("Grace Hopper met Eileen Collins. Both quickly ran home.",
     "Grace Hopper and Eileen Collins quickly ran home."),
    ("Grace Hopper met Eileen Collins and both laughed.",
     "Grace Hopper met Eileen Collins and Grace Hopper and Eileen Collins laughed."),
    ("Grace Hopper met Eileen Collins. Ada Lovelace came. Everyone else cheered.",
     "Grace Hopper, Eileen Collins and Ada Lovelace cheered."),
])
def test_rules_while_writing_them(story, last):
    assert parse_offline(story, CAST).panels[-1].text == last
