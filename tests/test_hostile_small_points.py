"""Issue 23, the smaller points: title limit, whole numbers without overflow, all-or-nothing
opening, preset names checked before any path join, big photos downscaled before detection, and
names that read the same as an existing identity refused."""

from __future__ import annotations

import dataclasses
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from configs import ConfigError, load_config, load_limits
from core.numbers import NotAWholeNumber, whole_number
from identities.library import IdentityExists, IdentityLibrary
from pipelines.cli import main as generate_main
from pipelines.panel_table import PanelTableError, move_row
from pipelines.project import ProjectError
from session import Session, Studio, StudioError
from session.errors import zero_based

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile import saved_comic_zip, valid_project  # noqa: E402

LIMITS = load_limits()


@pytest.fixture()
def studio(tmp_path):
    studio = Studio(load_config("tiny").replace(library_dir=str(tmp_path / "lib")), None,
                    load_error="not loaded in this test", export_root=tmp_path / "downloads")
    yield studio
    studio.shutdown()


def _png(size=(64, 64), colour="red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _one_line(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message


# ----------------------------------------------------------------------------- title


def test_the_title_limit_holds_in_the_app_and_the_cli(studio, tmp_path, capsys):
    args = ("comic book", [], "", 3, False, 4, 7.5, 64, 64, 1)
    assert studio.settings_from(*args, "t" * LIMITS.title_chars).title == "t" * LIMITS.title_chars
    with pytest.raises(StudioError, match=r"the title \(60,000 characters\) is over the limit of "
                                          r"200 \(limits.yaml: title_chars\)"):
        studio.settings_from(*args, "t" * 60_000)
    panels = tmp_path / "panels.json"
    panels.write_text(json.dumps([{"text": "A street.", "characters": []}]))
    code = generate_main(["generate", "--panels", str(panels), "--title", "t" * 500,
                          "--preset", "tiny", "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and "--title (500 characters) is over the limit of 200" in error
    _one_line(error)
    assert not (tmp_path / "out" / "comic.zip").exists()


# ----------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("value, expected", [(7, 7), ("7", 7), (" 12 ", 12), ("7.0", 7), (3.0, 3),
                                             ("1e3", 1000), ("-4", -4), ("+5", 5)])
def test_whole_numbers_are_parsed(value, expected):
    assert whole_number(value, "the seed") == expected


@pytest.mark.parametrize("value", ["inf", "-inf", "1e400", "nan", float("inf"), float("nan"), 2.5,
                                   "2.5", "", "seven", None, True, [], "9" * 41, "1" + "0" * 5000,
                                   "1e" + "9" * 100])
def test_non_whole_numbers_are_one_line_not_an_overflow(value):
    with pytest.raises(NotAWholeNumber) as info:
        whole_number(value, "the seed")
    message = str(info.value)
    assert message.startswith("the seed must be a whole number, got ") and len(message) < 80
    _one_line(message)


def test_typed_row_panel_and_seed_numbers_never_overflow(studio, tmp_path):
    with pytest.raises(StudioError, match="give a panel number from 1 to 3"):
        zero_based("inf", 3, "panel", "panels are")
    with pytest.raises(PanelTableError, match=r"give the number of the row to move \(1 to 1\)"):
        move_row([["A street.", "", ""]], "1e400", 1)
    # redraw on an opened comic (pictures from its zip): seed 'inf' / '1e400' -> one clear line
    path = saved_comic_zip(tmp_path / "comic.zip", {"panels/panel_01.png": _png()})
    session = Session()
    studio.open_project(session, str(path))
    assert session.comic is not None
    for seed in ("inf", "1e400"):
        with pytest.raises(StudioError, match=rf"the new seed must be a whole number, got '{seed}' "
                                              r"\(or blank for a random one\)"):
            studio.redraw(session, [], 1, seed)


# ----------------------------------------------------------------------------- opening


def test_opening_a_project_is_all_or_nothing(studio, tmp_path):
    path = saved_comic_zip(tmp_path / "comic.zip", {"panels/panel_01.png": _png()})
    session = Session()
    studio.open_project(session, str(path))
    comic, cast, story = session.comic, list(session.cast), session.story
    assert comic is not None and cast == ["Ada Lovelace"]

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(valid_project(1), steps="many")))
    with pytest.raises(ProjectError):
        studio.open_project(session, str(bad))
    assert session.comic is comic and session.cast == cast and session.story == story

    # characters in neither the library nor the file: opened with a warning, never half-applied
    # (it used to fail with "no identity named ..." after clearing the comic)
    unknown = tmp_path / "project.json"
    unknown.write_text(json.dumps(dict(valid_project(1), cast=["Grace Hopper"],
                                       panels=[{"text": "Grace Hopper waves.",
                                                "characters": ["Grace Hopper"]}])))
    restored = studio.open_project(session, str(unknown))
    assert session.cast == ["Grace Hopper"] and session.comic is None
    assert any("Grace Hopper" in w and "train that identity" in w for w in restored.warnings)


# ----------------------------------------------------------------------------- presets


@pytest.mark.parametrize("name", ["../limits", "../../tests/data/x", "/etc/passwd", "limits",
                                  "tiny/../sdxl", "safety"])
def test_preset_names_are_checked_against_the_shipped_presets(name):
    with pytest.raises(ConfigError, match=r"unknown preset .* \(choose from: sdxl, tiny\)"):
        load_config(preset=name)


def test_a_project_naming_another_preset_file_is_refused_in_one_line(tmp_path, capsys):
    outside = tmp_path / "evil.yaml"
    outside.write_text("name: evil\n")
    project = tmp_path / "project.json"
    project.write_text(json.dumps(dict(valid_project(1), preset=f"../../../../{tmp_path}/evil")))
    code = generate_main(["generate", "--project", str(project), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and "unknown preset" in error and "choose from: sdxl, tiny" in error
    _one_line(error)


# ----------------------------------------------------------------------------- photos


def test_photos_over_the_work_size_are_downscaled_before_detection():
    from faces.photos import decode_photo, fit_pixels

    limits = dataclasses.replace(LIMITS, photo_work_pixels=10_000)
    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8))
    for fmt in ("JPEG", "PNG"):
        buffer = io.BytesIO()
        picture.save(buffer, format=fmt)
        rgb = decode_photo(buffer.getvalue(), limits)
        height, width = rgb.shape[:2]
        assert rgb.dtype == np.uint8 and rgb.shape[2] == 3
        assert height * width <= 10_000 and abs(width / height - 4 / 3) < 0.05, (fmt, rgb.shape)
    small = np.zeros((50, 60, 3), np.uint8)
    assert fit_pixels(small, 10_000) is small
    assert decode_photo(_png((60, 50)), limits).shape == (50, 60, 3)  # small photos: untouched


# ----------------------------------------------------------------------------- names


def _vectors():
    return torch.zeros(2, 8), torch.zeros(2, 12)


def test_names_that_read_the_same_are_refused_naming_the_existing_identity(tmp_path):
    from identities.confusables import confusable_with, skeleton

    assert skeleton("\u0410da") == skeleton("Ada") != skeleton("Ava")
    assert confusable_with("José", ["Jose"]) is None and confusable_with("李小龙", ["Bruce Lee"]) is None
    library = IdentityLibrary(tmp_path / "lib")
    library.add("Ada Lovelace", *_vectors())
    library.add("Alan Turing", *_vectors())
    with pytest.raises(IdentityExists, match=r"'Аda Lovelace' reads the same as the existing "
                                             r"identity 'Ada Lovelace'; choose another name"):
        library.add("\u0410da Lovelace", *_vectors())
    with pytest.raises(IdentityExists, match="reads the same as the existing identity 'Ada Lovelace'"):
        library.rename("Alan Turing", "Ada Lovel\u0430ce")   # Cyrillic а
    library.add("Ada Lovelace", *_vectors(), overwrite=True)  # the same name stays allowed
    library.rename("Ada Lovelace", "Ada King")
    assert sorted(library.names()) == ["Ada King", "Alan Turing"]


def test_training_refuses_a_confusable_name_before_the_photo_is_read(studio, tmp_path):
    from identities.owners import LOCAL

    studio.workspace.library(LOCAL).add("Ada Lovelace", *_vectors())
    with pytest.raises(IdentityExists, match="reads the same as the existing identity 'Ada Lovelace'"):
        studio.training.check(str(tmp_path / "never-read.png"), "\u0410da Lovelace", "she", True,
                              steps=3)


def test_the_app_opens_a_saved_comic_with_hostile_pictures_without_decoding_them(studio, tmp_path):
    """Issue 23: a 1 GiB panel (a 1 MB zip) and a 1-bit 9000x9000 panel are skipped (their
    memory is measured by bench/bench_hostile.py); the project opens to be drawn again."""
    from hostile import huge_png

    for path in (saved_comic_zip(tmp_path / "gib.zip", bomb=("panels/panel_01.png", 1 << 30)),
                 saved_comic_zip(tmp_path / "wide.zip", {"panels/panel_01.png": huge_png(9000, 9000)})):
        session = Session()
        restored = studio.open_project(session, str(path))
        assert session.comic is None and "press **Generate** to draw it again" in restored.info
        assert session.restored is not None and session.restored.title == "A day"
