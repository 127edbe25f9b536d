"""My comics, the library gallery, the cards and Train again, as a person uses them (issue 24).

In Debian's chromium, on the tiny preset, with a library of nine identities made beforehand and a
training job that a restart interrupted (the database row a ``kill -9`` during training leaves):

* the library gallery grows with the library: every face shows, no scroll bar, each name under
  its face, never over it (``09_library.png``);
* *Train again* retrains the interrupted job in one click, with its kept photo, name and pronouns
  (``10_train_again.png``: done, the button gone);
* in My comics, *Delete this comic* with nothing selected gives one line that stays, no red
  "Error" marker, and the gallery still works (``11_delete_nothing.png``);
* a comic drawn, reopened from My comics and drawn again is still one entry; rename works
  (``12_one_entry.png``);
* a candidate click answers under its card, the chosen candidate captioned "✓ N in the comic";
  the keyboard reaches the candidates (Tab + Enter chooses) (``13_cards.png``);
* *Delete this comic* asks first; *Keep it* keeps it, *Yes, delete* deletes it.

Screenshots go to a temporary folder; with ``UPDATE_SCREENSHOTS=1`` also to ``docs/screenshots/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from browser.app_server import running_app, save_test_faces
from browser.test_browser_flow import (CHROMIUM, TRAINING_TIMEOUT_MS, open_page, shoot,
                                       wait_for_text)

pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                       "(apt-get install chromium); the browser test needs it"),
]
sync_api = pytest.importorskip("playwright.sync_api")

#: Nine identities, some with long names (they used to wrap over the faces).
NAMES = [("Ada Lovelace", "she"), ("Alan Mathison Turing", "he"),
         ("Grace Brewster Murray Hopper", "she"), ("Katherine Coleman Goble Johnson", "she"),
         ("Mark Twain", "he"), ("Marie Salomea Skłodowska Curie", "she"),
         ("Tim Berners-Lee", "he"), ("Margaret Heafield Hamilton", "she"),
         ("Dorothy Vaughan", "she")]
STORY = "Ada Lovelace waved at Mark Twain. Both of them laughed."


def _make_library(library: Path, faces: dict[str, Path], tiny_components) -> None:
    """Nine identities (random vectors of the tiny preset's widths, real face crops) and one
    training job that was running when the server died."""
    from identities.library import IdentityLibrary
    from identities.owners import LOCAL
    from serving.store import DB_FILE, JobRecord, Store

    width = (tiny_components.text_encoder.get_input_embeddings().embedding_dim,
             tiny_components.text_encoder_2.get_input_embeddings().embedding_dim)
    crops = [np.asarray(Image.open(faces["astronaut"]).convert("RGB").crop((150, 30, 330, 210))),
             np.asarray(Image.open(faces["grace_hopper"]).convert("RGB").crop((140, 40, 400, 300)))]
    shelf = IdentityLibrary(library)
    for i, (name, pronouns) in enumerate(NAMES):
        shelf.add(name, torch.randn(2, width[0]), torch.randn(2, width[1]), pronouns=pronouns,
                  face=crops[i % 2])
    store = Store(library / DB_FILE)
    store.add_job(JobRecord(id="cut0short000", owner=LOCAL.id, label="Training Eileen Collins",
                            name="Eileen Collins", pronouns="she", steps=2, seed=None,
                            status="running", total=2, photo=faces["astronaut"].read_bytes()))
    store.close()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("my_comics")


@pytest.fixture(scope="module")
def page(workdir, tiny_components):
    library = workdir / "library"
    _make_library(library, save_test_faces(workdir / "faces"), tiny_components)
    with running_app(library, workdir / "server.log") as url, open_page(url) as page:
        yield page


def _no_error_markers(page) -> None:
    """No red "Error" pill anywhere (gradio marks a failed event's outputs with one)."""
    assert page.locator(".error, .error-box").filter(has_text="Error").count() == 0


def test_library_train_again_my_comics_and_cards(page, workdir):
    # ---------------------------------------------------------------- the library gallery
    gallery = page.locator("#library_gallery")
    thumbs = gallery.locator("button.thumbnail-item")
    thumbs.nth(len(NAMES) - 1).wait_for()
    assert thumbs.count() == len(NAMES)
    wrap = gallery.locator(".grid-wrap")
    assert wrap.evaluate("w => w.scrollHeight <= w.clientHeight + 1")  # grows, no scroll bar
    for i in range(len(NAMES)):
        image = thumbs.nth(i).locator("img").bounding_box()
        caption = thumbs.nth(i).locator(".caption-label").bounding_box()
        assert caption["y"] >= image["y"] + image["height"] - 1, NAMES[i]  # under, not over
    assert "Katherine Coleman Goble Johnson" in gallery.inner_text()  # whole, not cut
    shoot(page, workdir, "09_library.png")

    # ---------------------------------------------------------------- Train again: one click
    wait_for_text(page, "#train_status", "The training of Eileen Collins was interrupted")
    page.click("#train_again")
    wait_for_text(page, "#train_status", "submitted again with the same photo")
    # its line follows the job to its end, and the status line never says a stale "queued"
    wait_for_text(page, "#train_progress", "Eileen Collins is ready and in your library",
                  timeout_ms=TRAINING_TIMEOUT_MS)
    assert "queued" not in page.inner_text("#train_status")
    gallery.locator("button.thumbnail-item").nth(len(NAMES)).wait_for()
    assert "Eileen Collins" in gallery.inner_text()
    assert not page.locator("#train_again").is_visible()  # once only: its photo is gone now
    shoot(page, workdir, "10_train_again.png")

    # ---------------------------------------------------------------- Delete with nothing selected
    page.click("#tab_comic-button")
    wait_for_text(page, "#my_comics_summary", "No saved comics yet")
    page.click("#my_comic_delete")
    wait_for_text(page, "#my_comics_message", "no comic is selected")
    page.wait_for_timeout(1500)  # the line stays (toasts come and go)
    assert "No comic is selected" in page.inner_text("#my_comics_message")
    assert not page.locator("#my_comic_confirm_row").is_visible()
    _no_error_markers(page)
    shoot(page, workdir, "11_delete_nothing.png")

    # ---------------------------------------------------------------- draw a comic
    page.click("#tab_characters-button")
    for name in ("Ada Lovelace", "Mark Twain"):
        page.locator("#library_gallery button.thumbnail-item").filter(has_text=name).first.click()
        wait_for_text(page, "#library_details", name)
        page.click("#cast_add")
        wait_for_text(page, "#cast_list", name)
    page.click("#tab_story-button")
    page.locator("#story_text textarea").fill(STORY)
    page.click("#story_parse")
    wait_for_text(page, "#story_info", "offline parser")
    page.locator("#panels_table").filter(has_text="Ada Lovelace and Mark Twain laughed").wait_for()
    page.click("#tab_style-button")
    page.locator("#comic_title textarea, #comic_title input").first.fill("Both of them")
    candidates = page.locator("#candidates input[type=number]")
    candidates.fill("2")
    candidates.press("Tab")
    page.click("#tab_comic-button")
    page.click("#generate_button")
    wait_for_text(page, "#generate_status", "Done: 2 panels")
    entries = page.locator("#my_comics_gallery button.thumbnail-item")
    entries.first.wait_for()
    assert entries.count() == 1
    caption = page.inner_text("#my_comics_gallery")
    assert "Both of them" in caption and "2 panels" in caption and "Ada Lovelace" in caption

    # ---------------------------------------------------------------- the cards
    strip = page.locator("#card_1_candidates button.thumbnail-item")
    strip.nth(1).wait_for()
    chosen = 0 if "✓" in strip.nth(0).inner_text() else 1
    other = 1 - chosen
    assert "in the comic" in strip.nth(chosen).inner_text()
    label = strip.nth(chosen).locator(".caption-label").bounding_box()
    picture = strip.nth(chosen).locator("img").bounding_box()
    assert label["y"] >= picture["y"] + picture["height"] - 1  # the ✓ label is visible, under it
    strip.nth(other).focus()  # the keyboard reaches the candidates; Enter chooses
    page.keyboard.press("Enter")
    wait_for_text(page, "#card_1_note", f"Now shows candidate {other + 1}")
    wait_for_text(page, "#card_1_text", f"candidate {other + 1} of 2")
    assert "Now shows" not in page.inner_text("#generate_status")  # under its card, not above
    page.locator("#card_1_candidates button.thumbnail-item").nth(other).filter(
        has_text="in the comic").wait_for()
    page.locator("#card_1").scroll_into_view_if_needed()
    shoot(page, workdir, "13_cards.png")

    # ---------------------------------------------------------------- reopen, draw again: one entry
    page.reload()
    page.wait_for_selector("#train_name")
    page.click("#tab_comic-button")
    entries = page.locator("#my_comics_gallery button.thumbnail-item")
    entries.first.wait_for()
    entries.first.click()
    wait_for_text(page, "#my_comics_message", "Opened Both of them")
    wait_for_text(page, "#my_comic_selected", "Both of them")
    page.wait_for_selector("#card_2 img")
    page.click("#generate_button")
    wait_for_text(page, "#generate_status", "Done: 2 panels")
    page.wait_for_timeout(1000)  # the list is refreshed after the drawing
    assert page.locator("#my_comics_gallery button.thumbnail-item").count() == 1
    # rename it
    page.locator("#my_comic_title textarea, #my_comic_title input").first.fill("Two friends")
    page.click("#my_comic_rename")
    wait_for_text(page, "#my_comics_message", "Renamed it to Two friends")
    wait_for_text(page, "#my_comics_gallery", "Two friends")
    assert page.locator("#my_comics_gallery button.thumbnail-item").count() == 1
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, workdir, "12_one_entry.png")

    # ---------------------------------------------------------------- Delete asks first
    page.click("#my_comic_delete")
    wait_for_text(page, "#my_comic_confirm_text", "Delete Two friends from My comics?")
    page.click("#my_comic_delete_cancel")
    wait_for_text(page, "#my_comics_message", "Kept it")
    assert page.locator("#my_comics_gallery button.thumbnail-item").count() == 1
    page.click("#my_comic_delete")
    page.click("#my_comic_delete_confirm")
    wait_for_text(page, "#my_comics_message", "Deleted Two friends from My comics")
    wait_for_text(page, "#my_comics_summary", "No saved comics yet")
    _no_error_markers(page)
