"""The app in a real browser: Playwright drives Debian's chromium through the four steps.

A text file uploaded as a photo and a missing pronoun get a line that stays; three identities
are trained ("Agent 47" among them) with their status in words and a page reload while the jobs
are remembered; a story naming people outside the cast is reported (and one is added in one
click) before anything is drawn; the seed's story is parsed, styled and drawn into panel cards; a
candidate is picked and a panel redrawn on its card; a failed Generate leaves the comic in view;
the saved zip opens in a new session with its pages, story and cast order. Each point is
screenshotted into a temporary folder; with ``UPDATE_SCREENSHOTS=1`` the pictures are copied to
``docs/screenshots/`` for the README.

Never runs ``playwright install``: it uses the system chromium, and skips where there is none.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

import pytest

from browser.app_server import ROOT, SEED_STORY, running_app, save_test_faces

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                       "(apt-get install chromium); the browser test needs it"),
]
sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
SCREENSHOTS = ROOT / "docs" / "screenshots"
TIMEOUT_MS = 30_000
TRAINING_TIMEOUT_MS = 180_000  # three trainings run one after another on a loaded 2-core CI box


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("browser")


@pytest.fixture(scope="module")
def server(workdir):
    with running_app(workdir / "library", workdir / "server.log") as url:
        yield url


@contextlib.contextmanager
def open_page(url: str, timeout_ms: int = TIMEOUT_MS):
    """Debian's chromium, headless, 1280 x 900, on the app at ``url`` once its page is up;
    yields the page and closes the browser after."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        page.goto(url)
        page.wait_for_selector("#train_name")
        try:
            yield page
        finally:
            context.close()
            browser.close()


@pytest.fixture(scope="module")
def page(server):
    with open_page(server) as page:
        yield page


def shoot(page, workdir: Path, name: str) -> Path:
    """A full-page screenshot in the test's folder, copied to docs/screenshots when asked."""
    page.add_style_tag(content=".toast-wrap { display: none !important; }")  # the lines stay
    page.wait_for_timeout(300)  # let transitions settle
    path = workdir / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOTS / name)
    return path


def fill_number(page, selector: str, value: int | float) -> None:
    box = page.locator(f"{selector} input[type=number]")
    box.fill(str(value))
    box.press("Tab")


def upload_photo(page, photo: Path) -> None:
    clear = page.locator("#train_photo button[aria-label='Clear'], #train_photo button[title='Clear']")
    if clear.count():
        clear.first.click()
    page.locator("#train_photo input[type=file]").set_input_files(str(photo))


def train(page, photo: Path, name: str, pronouns: str | None, *, consent: bool = True) -> None:
    upload_photo(page, photo)
    wait_for_text(page, "#train_status", "Photo checked")
    page.wait_for_selector("#train_face img")
    page.locator("#train_name textarea, #train_name input").first.fill(name)
    if pronouns:
        page.locator("#train_pronouns").get_by_label(pronouns, exact=True).check()
    box = page.locator("#train_consent input[type=checkbox]")
    if box.is_checked() != consent:
        box.click()
    page.click("#train_button")


def wait_for_text(page, selector: str, text: str, timeout_ms: float | None = None) -> None:
    page.locator(selector).filter(has_text=text).first.wait_for(timeout=timeout_ms)


def wait_for_empty_form(page) -> None:
    """After a training is queued the form is cleared (photo, face, name, pronouns, consent)."""
    page.wait_for_function("document.querySelector('#train_name textarea, #train_name input')"
                           ".value === ''")
    page.locator("#train_photo input[type=file]").wait_for(state="attached")


def add_to_cast(page, caption: str) -> None:
    page.click(f'#library_gallery button:has(img[alt="{caption}"])')
    name = caption.split(" (")[0]
    wait_for_text(page, "#library_details", name)
    page.wait_for_selector("#library_face img")
    page.click("#cast_add")
    wait_for_text(page, "#cast_list", name)


def characters_step(page, workdir: Path, faces: dict[str, Path]) -> None:
    """Bad uploads and missing pronouns get a line that stays; training status in words."""
    not_a_photo = workdir / "notes.png"
    not_a_photo.write_text("a text file renamed to .png")
    upload_photo(page, not_a_photo)
    wait_for_text(page, "#train_status", "The file is not a readable image; upload a JPEG, PNG")
    page.wait_for_timeout(11_000)  # toasts are gone by now; the line stays
    assert "not a readable image" in page.inner_text("#train_status")
    assert page.locator("#train_status .error, .error:has-text('Error')").count() == 0
    shoot(page, workdir, "05_bad_photo.png")

    page.click("#train_advanced")
    fill_number(page, "#train_steps", 3)
    train(page, faces["astronaut"], "Hugh Jackman", None)
    wait_for_text(page, "#train_status", "Choose the person's pronouns")
    page.locator("#train_pronouns").get_by_label("he", exact=True).check()
    page.click("#train_button")
    wait_for_text(page, "#train_status", "Training of Hugh Jackman submitted")
    wait_for_empty_form(page)  # the form is ready for the next character
    fill_number(page, "#train_steps", 3)
    train(page, faces["grace_hopper"], "Taylor Swift", "she")
    wait_for_text(page, "#train_status", "Training of Taylor Swift submitted")
    wait_for_empty_form(page)
    fill_number(page, "#train_steps", 3)
    train(page, faces["astronaut"], "Agent 47", "he")  # digits are fine in a name
    for name in ("Hugh Jackman", "Taylor Swift", "Agent 47"):
        wait_for_text(page, "#train_progress", f"{name} is ready and in your library",
                      TRAINING_TIMEOUT_MS)
    assert page.locator("#train_progress img.train-face").count() == 3
    progress = page.inner_text("#train_progress")
    assert "loss" not in progress and "face parsing" not in progress
    job_count = page.locator("#train_progress .train-job").count()

    # a reload finds the jobs again (their ids are kept in the browser's local storage)
    page.reload()
    page.wait_for_selector('#train_progress .train-job[data-status="done"]')
    assert page.locator("#train_progress .train-job").count() == job_count == 3
    for caption in ("Hugh Jackman (he)", "Taylor Swift (she)"):
        add_to_cast(page, caption)
    assert "Hugh Jackman (he), Taylor Swift (she)" in page.inner_text("#cast_list")
    assert page.locator("#cast_gallery img").count() == 2
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, workdir, "01_characters.png")


def outsiders_step(page, workdir: Path) -> None:
    """A story naming people outside the cast is reported before anything is drawn."""
    page.click("#tab_story-button")
    page.locator("#story_text textarea").fill(
        "Hugh Jackman met Agent 47 and Marie Curie at the market. She laughed. "
        "The market was quiet.")
    page.click("#story_parse")
    wait_for_text(page, "#story_info", "Not in the cast:")
    info = page.inner_text("#story_info")
    assert "Agent 47" in info and "Marie Curie" in info and "Nobody in panel 3" in info
    page.locator("#story_add_cast").filter(has_text="Add Agent 47 to the cast").wait_for()
    shoot(page, workdir, "06_outside_cast.png")
    page.click("#tab_comic-button")
    page.click("#generate_button")
    wait_for_text(page, "#generate_status", "is not in the cast")
    assert page.locator("#card_1 img").count() == 0  # nothing was drawn
    page.click("#tab_story-button")
    page.click("#story_add_cast")
    page.locator("#cast_list").filter(has_text="Agent 47").first.wait_for(state="attached")
    page.wait_for_function("!document.querySelector('#story_info').innerText"
                           ".includes('Not in the cast:')")


def test_the_four_steps_in_a_browser(page, workdir):
    faces = save_test_faces(workdir / "faces")
    characters_step(page, workdir, faces)
    outsiders_step(page, workdir)

    # ---------------------------------------------------------------- 2. story
    page.locator("#story_text textarea").fill(SEED_STORY)
    page.click("#story_parse")
    wait_for_text(page, "#story_info", "offline parser")
    table = page.locator("#panels_table")
    table.filter(has_text="Hugh Jackman was selecting an apple").wait_for()
    assert "3 panels" in page.inner_text("#story_info")
    first_rows = _row_texts(page)
    assert len(first_rows) == 3
    fill_number(page, "#panel_row", 3)
    page.click("#panel_up")
    page.wait_for_function("document.querySelector('#panel_row input').value === '2'")
    assert _row_texts(page) == [first_rows[0], first_rows[2], first_rows[1]]
    page.click("#panel_down")
    page.wait_for_function("document.querySelector('#panel_row input').value === '3'")
    assert _row_texts(page) == first_rows
    fill_number(page, "#panel_row", 9)
    page.click("#panel_remove")
    wait_for_text(page, "#story_message", "Row 9 does not exist")
    assert _row_texts(page) == first_rows
    shoot(page, workdir, "02_story.png")

    # ---------------------------------------------------------------- 3. style and settings
    page.click("#tab_style-button")
    keywords = page.locator("#style_keywords")
    for keyword in ("comic style", "vivid colors", "medium shot"):
        keywords.get_by_label(keyword, exact=True).check()
    assert "nude" in page.locator("#negative_prompt textarea").input_value()
    fill_number(page, "#candidates", 2)
    page.locator("#comic_title textarea, #comic_title input").first.fill("The Apple")
    dropdown = page.locator("#style_template").bounding_box()
    first_keyword = keywords.locator("label").first.bounding_box()
    assert first_keyword["y"] >= dropdown["y"] + dropdown["height"]  # no overlap
    shoot(page, workdir, "03_style.png")

    # ---------------------------------------------------------------- 4. comic: panel cards
    page.click("#tab_comic-button")
    page.click("#generate_button")
    wait_for_text(page, "#generate_status", "Done: 3 panels on 1 page")
    for number in (1, 2, 3):
        page.wait_for_selector(f"#card_{number} img")
        assert "no face found" in page.inner_text(f"#card_{number}_text")
    assert not page.locator("#card_4").is_visible()
    page.wait_for_selector("#pages_gallery img")
    wait_for_text(page, "#downloads_list", "project.json")
    names = page.inner_text("#downloads_list")
    for expected in ("page_1.png", "comic.pdf", "comic.zip", "project.json"):
        assert expected in names, names

    thumbs = page.locator("#card_1_candidates button.thumbnail-item")
    thumbs.nth(1).wait_for()
    assert thumbs.count() == 2
    unused = 1 if "✓" in thumbs.nth(0).inner_text() else 0
    thumbs.nth(unused).click()
    wait_for_text(page, "#card_1_note", f"Now shows candidate {unused + 1}")  # under its card
    wait_for_text(page, "#card_1_text", f"candidate {unused + 1} of 2")
    assert "seed 0, candidate" in page.inner_text("#card_1_text")  # the table's seed

    page.locator("#card_2_seed textarea, #card_2_seed input").first.fill("777")
    page.click("#card_2_redraw")
    wait_for_text(page, "#card_2_note", "Redrawn with seed 777")
    wait_for_text(page, "#card_2_text", "seed 777")
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, workdir, "04_comic.png")
    page.click("#tab_story-button")  # the panel's row now carries its seed
    page.locator('#panels_table [role="gridcell"][data-col="2"]').filter(has_text="777").wait_for()
    assert _cell_texts(page, column=2) == ["", "777", ""]

    # ---------------------------------------------------------------- a failed Generate
    page.click("#tab_style-button")
    fill_number(page, "#width", 5000)  # over the tiny preset's side: the app says so
    page.click("#tab_comic-button")
    page.click("#generate_button")
    wait_for_text(page, "#generate_status", "over the limit of 512")
    for number in (1, 2, 3):
        assert page.locator(f"#card_{number} img").count() >= 1  # the last comic is still there
    assert page.locator("#pages_gallery img").count() >= 1
    assert "comic.zip" in page.inner_text("#downloads_list")
    shoot(page, workdir, "07_failed_generate.png")

    # ---------------------------------------------------------------- a saved comic opens at once
    with page.expect_download() as download:
        page.locator('#downloads_list a[href$="comic.zip"]').first.click()
    saved = workdir / "comic.zip"
    download.value.save_as(str(saved))
    page.reload()  # a new session: nothing drawn, empty cast
    page.wait_for_selector("#train_name")
    page.click("#tab_comic-button")
    page.locator("#project_file input[type=file]").set_input_files(str(saved))
    wait_for_text(page, "#project_info", "Opened comic.zip")
    for number in (1, 2, 3):
        page.wait_for_selector(f"#card_{number} img")
    page.wait_for_selector("#pages_gallery img")
    assert f"candidate {unused + 1} of 2" in page.inner_text("#card_1_text")
    assert "seed 777" in page.inner_text("#card_2_text")
    shoot(page, workdir, "08_opened.png")
    page.click("#tab_story-button")
    assert page.locator("#story_text textarea").input_value() == SEED_STORY
    assert _cell_texts(page, column=2) == ["0", "777", "2"]
    page.click("#tab_characters-button")
    assert "Hugh Jackman (he), Taylor Swift (she), Agent 47 (he)" in page.inner_text("#cast_list")

    # ---------------------------------------------------------------- my comics
    page.reload()  # the drawn comic was kept (card swaps and redraws update it, opening a file
    page.wait_for_selector("#train_name")  # does not add one); one click reopens it at once
    page.click("#tab_comic-button")
    kept = page.locator("#my_comics_gallery button.thumbnail-item")
    kept.first.wait_for()
    assert kept.count() == 1 and "The Apple" in page.inner_text("#my_comics_gallery")
    kept.first.click()
    wait_for_text(page, "#generate_status", "Opened The Apple")
    page.wait_for_selector("#pages_gallery img")
    for number in (1, 2, 3):
        page.wait_for_selector(f"#card_{number} img")
    wait_for_text(page, "#downloads_list", "comic.pdf")
    page.click("#tab_story-button")  # its panels are back in the table, seeds included
    page.locator('#panels_table [role="gridcell"][data-col="2"]').filter(has_text="777").wait_for()


def _cell_texts(page, column: int) -> list[str]:
    """One column of the panel table, as shown (cells are ``cell-<row>-<column>``)."""
    cells = page.locator(f'#panels_table [role="gridcell"][data-col="{column}"]')
    return [text.strip() for text in cells.all_inner_texts()]


def _row_texts(page) -> list[str]:
    """The Text column of the panel table."""
    return _cell_texts(page, column=0)
