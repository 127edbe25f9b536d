"""Styles: the seed's 37 keywords, named templates, composition and clear errors."""

from __future__ import annotations

import pytest

from pipelines.styles import StyleError, load_style_book, parse_style_book

# REFERENCE.md section 2, "Inference": the seed UI's list, verbatim.
SEED_KEYWORDS = (
    "2d minimalistic, 4k, 8k, cartoon, chiaroscuro lighting technique, cinematic, clipart style, "
    "close-up, comic style, cyberpunk, detailed, digitally enhanced, disney style, dramatic, dreamy, "
    "expressive, fantasy art, high contrast, high resolution, highly detailed, intimate, low-res, "
    "medium shot, minimalistic, oil painting, photorealistic, pixel-art, psychedelic style, smooth "
    "light, studio ghibli style, surreal, Van Gogh, vaporwave style, vector, vivid colors, "
    "watercolor painting, wide shot").split(", ")


@pytest.fixture(scope="module")
def book():
    return load_style_book()


def test_the_seed_keywords_are_all_offered_verbatim(book):
    assert len(SEED_KEYWORDS) == 37
    assert list(book.keywords) == SEED_KEYWORDS


def test_named_templates_exist_and_wrap_the_prompt_once(book):
    for name in ("none", "comic book", "manga", "watercolor", "cinematic", "pixel art", "noir",
                 "children's book", "photographic"):
        style = book.style(name)
        assert style.prompt.count("{prompt}") == 1
    assert book.style("none").apply("Ada Lovelace reads.") == "Ada Lovelace reads."
    assert book.style("comic book").apply("x").startswith("x, comic book style")
    assert book.style(None).name == book.default_style == "comic book"


def test_keywords_are_appended_as_the_seed_does(book):
    prompt, negative = book.compose("Ada Lovelace reads.", "none", ["comic style", "vivid colors"], "")
    assert prompt == "Ada Lovelace reads., comic style, vivid colors"
    prompt, negative = book.compose("Ada reads", "noir", "Comic Style , 4K", "blurry")
    assert prompt.startswith("Ada reads, comic style, 4k, film noir")
    assert negative.startswith("blurry, ") and "color" in negative


def test_names_are_matched_loosely_and_canonicalised(book):
    assert book.style("Comic-Book").name == "comic book"
    assert book.style("  PIXEL_ART ").name == "pixel art"
    assert book.keyword_list("van gogh, VAN GOGH, pixel-art") == ["Van Gogh", "pixel-art"]
    assert book.keyword_list(None) == [] and book.keyword_list(" , ") == []


def test_unknown_style_or_keyword_names_the_choices(book):
    with pytest.raises(StyleError) as info:
        book.style("comic bok")
    message = str(info.value)
    assert "unknown style 'comic bok'" in message and "did you mean 'comic book'" in message
    assert "watercolor" in message and "\n" not in message
    with pytest.raises(StyleError, match="unknown style keyword 'neon glow'"):
        book.keyword_list("comic style, neon glow")


def test_a_malformed_styles_file_is_rejected():
    with pytest.raises(StyleError, match="exactly once"):
        parse_style_book({"keywords": [], "styles": {"bad": {"prompt": "no placeholder"}}})
    with pytest.raises(StyleError, match="default_style"):
        parse_style_book({"keywords": [], "styles": {"a": {}}, "default_style": "b"})
    with pytest.raises(StyleError, match="keywords"):
        parse_style_book({"keywords": [""], "styles": {"a": {}}})
