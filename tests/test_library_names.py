"""Name validation and pronoun parsing (identities.names)."""

from __future__ import annotations

import pytest

from identities.names import (InvalidName, InvalidPronouns, LibraryError, name_key,
                                  parse_pronouns, validate_name)


@pytest.mark.parametrize("raw, expected", [
    ("Ada Lovelace", "Ada Lovelace"),
    ("  Ada   Lovelace \t\n", "Ada Lovelace"),   # surrounding whitespace is trimmed
    ("Cher", "Cher"),
    ("Mary-Jane O'Neil", "Mary-Jane O'Neil"),
    ("J.R.R. Tolkien", "J.R.R. Tolkien"),
    ("Zoë Ångström", "Zoë Ångström"),
    ("Zoe\u0308 Smith", "Zoë Smith"),          # decomposed umlaut is NFC-normalised
    ("Владимир Набоков", "Владимир Набоков"),
    ("周 杰伦", "周 杰伦"),
    ("Martin Luther King Jr.", "Martin Luther King Jr."),
    ("Conan O’Brien", "Conan O’Brien"),
    ("Agent  47", "Agent 47"),
    ("R2D2", "R2D2"),
])
def test_valid_names_are_normalised(raw, expected):
    assert validate_name(raw) == expected


@pytest.mark.parametrize("raw, fragment", [
    ("", "empty"),
    ("   ", "empty"),
    ("Ada/Lovelace", "path separator"),
    ("..\\evil", "path separator"),
    ("../../etc", "path separator"),
    ("47", "no letters"),
    ("1 2", "no letters"),
    ("Ada\nLovelace", "control character"),
    ("Ada\x00", "control character"),
    ("Ada\u200bLovelace", "control character"),   # zero-width space (format character)
    ("A" * 200, "too long (200 characters"),
    ("One Two Three Four Five", "5 words"),
    ("Ada_Lovelace", "'_'"),
    ("Ada@Lovelace", "'@'"),
    ("Ada - Lovelace", "without letters"),
    ("...", "without letters"),
])
def test_invalid_names_get_a_clear_one_line_message(raw, fragment):
    with pytest.raises(InvalidName) as info:
        validate_name(raw)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message and "\x00" not in message
    assert isinstance(info.value, LibraryError) and isinstance(info.value, ValueError)


def test_non_text_name_is_refused():
    with pytest.raises(InvalidName, match="must be text"):
        validate_name(42)


def test_name_key_ignores_case_spacing_and_apostrophe_style():
    assert name_key("  conan   O’BRIEN ") == name_key("Conan O'Brien")
    assert name_key("Ada Lovelace") != name_key("Ada King")


@pytest.mark.parametrize("raw, expected", [
    ("", ""), (None, ""), ("  ", ""),
    ("he", "he"), ("He/Him", "he"), ("he/him/his", "he"),
    ("she", "she"), ("SHE / HER", "she"), ("her", "she"),
    ("they", "they"), ("they/them", "they"), ("them", "they"),
    ("she/they", "she"),
])
def test_pronouns_normalise(raw, expected):
    assert parse_pronouns(raw) == expected


@pytest.mark.parametrize("raw", ["xe/xem", "it", "he/xim", "1"])
def test_unknown_pronouns_are_refused(raw):
    with pytest.raises(InvalidPronouns, match="use he, she or they"):
        parse_pronouns(raw)
