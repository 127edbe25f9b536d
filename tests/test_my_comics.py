"""My comics through the session (in-process, tiny preset): one comic is one entry, rename,
and every action from any state (nothing selected, deleted elsewhere, damaged files) ends in a
one-line :class:`ComicNotFound`, leaving the session as it was."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from identities.library import IdentityLibrary

ROWS = [["Ada Lovelace ate an apple.", "Ada Lovelace", "", ""]]


@pytest.fixture()
def studio(studio, tiny_components):
    """conftest's tiny Studio with Ada Lovelace in its library."""
    width = (tiny_components.text_encoder.get_input_embeddings().embedding_dim,
             tiny_components.text_encoder_2.get_input_embeddings().embedding_dim)
    library: IdentityLibrary = studio.catalog.library
    library.add("Ada Lovelace", torch.randn(2, width[0]), torch.randn(2, width[1]),
                pronouns="she", face=np.full((64, 64, 3), 128, np.uint8))
    return studio


def _draw(studio, session, title: str, save_as_new: bool = False) -> None:
    settings = studio.settings_from("comic book", [], "", 5, False, 2, 7.5, 64, 64, 1, title)
    *_, last = studio.generate(session, ROWS, settings, save_as_new=save_as_new)
    assert last.done


def test_one_comic_is_one_entry_until_saved_as_new(studio):
    from session import Session

    session = Session()
    studio.add_to_cast(session, "Ada Lovelace")
    _draw(studio, session, "The Apple")
    [first] = studio.my_comics(session)
    assert first.caption().startswith("The Apple · ")
    assert first.caption().endswith(" · 1 panel · Ada Lovelace")
    _draw(studio, session, "The Apple, again")  # drawing again updates the entry
    [again] = studio.my_comics(session)
    assert again.id == first.id and again.title == "The Apple, again"
    assert again.updated >= first.updated
    _draw(studio, session, "Another", save_as_new=True)
    newest, oldest = studio.my_comics(session)
    assert oldest.id == first.id and newest.id != first.id and session.saved_id == newest.id
    # a reopened comic drawn again stays one entry
    other = Session()
    studio.open_saved(other, first.id)
    assert other.saved_id == first.id
    _draw(studio, other, "The Apple, reopened")
    assert [c.id for c in studio.my_comics(other)] == [newest.id, first.id]
    assert studio.my_comics(other)[1].title == "The Apple, reopened"
    # opening a project file (not an entry) makes the next Generate a new entry
    studio.open_project(other, str(oldest.zip))
    assert other.saved_id == ""
    # rename: listed with the new title, blank is "Untitled comic"
    assert studio.rename_saved(session, first.id, "  The   Apple  ") == "The Apple"
    assert studio.my_comics(session)[1].caption().startswith("The Apple · ")
    assert studio.rename_saved(session, first.id, "") == "Untitled comic"


def test_every_action_from_any_state_is_one_line(studio):
    from serving.saved_comics import ComicNotFound
    from session import Session

    session = Session()
    studio.add_to_cast(session, "Ada Lovelace")
    _draw(studio, session, "Kept")
    _draw(studio, session, "Damaged", save_as_new=True)
    damaged, kept = studio.my_comics(session)
    for action in (studio.open_saved, studio.delete_saved, studio.saved_title):
        for nothing in ("", None, "   "):
            with pytest.raises(ComicNotFound, match="no comic is selected"):
                action(session, nothing)
    with pytest.raises(ComicNotFound, match="no comic is selected"):
        studio.rename_saved(session, "", "x")
    # deleted in another tab: every action says so
    elsewhere = Session()
    studio.delete_saved(elsewhere, kept.id)
    for action in (studio.open_saved, studio.delete_saved, studio.saved_title):
        with pytest.raises(ComicNotFound, match="not among your saved comics"):
            action(session, kept.id)
    # damaged files: refused in one line, the session keeps its comic and downloads
    before = list(session.comic.files)
    damaged.zip.write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(ComicNotFound, match="'Damaged' cannot be opened: its files are damaged"):
        studio.open_saved(session, damaged.id)
    assert session.comic.files == before and all(__import__("os").path.isfile(f) for f in before)
    damaged.zip.unlink()
    with pytest.raises(ComicNotFound, match="damaged or missing"):
        studio.open_saved(session, damaged.id)
    assert damaged.summary[0] == 1  # still listed with its panel count, and deletable
    assert studio.delete_saved(session, damaged.id) == "Damaged"
    assert studio.my_comics(session) == []


def test_the_seed_box_refuses_blank_and_letters_in_one_range(studio):
    from session import StudioError

    def settings(seed, randomize=False):
        return studio.settings_from("comic book", [], "", seed, randomize, 2, 7.5, 64, 64, 1, "")

    for blank in (None, "", "  "):  # letters in a number box arrive blank
        with pytest.raises(StudioError, match=r"^the seed box is empty or not a number: type a "
                                              r"whole number from 0 to 2147483647"):
            settings(blank)
    assert settings(None, randomize=True).randomize  # the seed is drawn, the box ignored
    for bad in ("abc", -1, 2**31, 1.5, float("nan")):
        with pytest.raises(StudioError, match=r"^the seed must be a whole number from 0 to "
                                              r"2147483647, got"):
            settings(bad)
    assert settings("42").seed == 42 and settings(2**31 - 1).seed == 2**31 - 1
