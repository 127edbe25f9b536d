"""The app in a real browser: Playwright drives Debian's chromium through the four steps.

Train two identities (with a page reload while the jobs are remembered), build the cast, parse
the seed's story, choose a style, generate, and check the panels, pages and downloads. Each step
is screenshotted into a temporary folder; with ``UPDATE_SCREENSHOTS=1`` the pictures are copied
to ``docs/screenshots/`` for the README.

Never runs ``playwright install``: it uses the system chromium, and skips where there is none.
"""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("browser")


@pytest.fixture(scope="module")
def server(workdir):
    with running_app(workdir / "library", workdir / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(server)
        page.wait_for_selector("#train_name")
        try:
            yield page
        finally:
            context.close()
            browser.close()


def shoot(page, workdir: Path, name: str) -> Path:
    """A full-page screenshot in the test's folder, copied to docs/screenshots when asked."""
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


def train(page, photo: Path, name: str, pronouns: str, *, consent: bool = True) -> None:
    page.locator("#train_photo input[type=file]").set_input_files(str(photo))
    page.wait_for_selector("#train_photo img")
    page.locator("#train_name textarea, #train_name input").first.fill(name)
    page.locator("#train_pronouns").get_by_label(pronouns, exact=True).check()
    box = page.locator("#train_consent input[type=checkbox]")
    if box.is_checked() != consent:
        box.click()
    page.click("#train_button")


def wait_for_text(page, selector: str, text: str) -> None:
    page.locator(selector).filter(has_text=text).first.wait_for()


def test_the_four_steps_in_a_browser(page, workdir):
    faces = save_test_faces(workdir / "faces")

    # ---------------------------------------------------------------- 1. characters
    page.click("#train_advanced")
    fill_number(page, "#train_steps", 3)
    train(page, faces["astronaut"], "Hugh Jackman", "he", consent=False)
    wait_for_text(page, "#train_status", "Not started")
    toast = page.locator('[data-testid="toast-body"]').filter(has_text="likeness")
    toast.first.wait_for()  # the gr.Warning
    assert page.locator("#train_progress .train-job").count() == 0

    train(page, faces["astronaut"], "Hugh Jackman", "he")
    page.wait_for_selector('#train_progress .train-job[data-status="done"]')
    page.wait_for_selector('#library_gallery img[alt="Hugh Jackman (he)"]')
    job_id = page.locator("#train_job_id textarea, #train_job_id input").first.input_value()
    assert re.fullmatch(r"[0-9a-f]{12}", job_id)

    # a reload finds the job again (its id is kept in the browser's local storage)
    page.reload()
    page.wait_for_selector(f'#train_progress .train-job[data-job="{job_id}"][data-status="done"]')
    assert "Training Hugh Jackman: done" in page.inner_text("#train_progress")

    page.click("#train_advanced")
    fill_number(page, "#train_steps", 3)
    train(page, faces["grace_hopper"], "Taylor Swift", "she")
    page.wait_for_selector('#library_gallery img[alt="Taylor Swift (she)"]')
    assert page.locator("#train_progress .train-job").count() == 2

    for caption in ("Hugh Jackman (he)", "Taylor Swift (she)"):
        page.click(f'#library_gallery button:has(img[alt="{caption}"])')
        name = caption.split(" (")[0]
        wait_for_text(page, "#library_details", name)
        page.wait_for_selector("#library_face img")
        page.click("#cast_add")
        wait_for_text(page, "#cast_list", name)
    assert "Hugh Jackman (he), Taylor Swift (she)" in page.inner_text("#cast_list")
    assert page.locator("#cast_gallery img").count() == 2
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, workdir, "01_characters.png")

    # ---------------------------------------------------------------- 2. story
    page.click("#tab_story-button")
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
    shoot(page, workdir, "02_story.png")

    # ---------------------------------------------------------------- 3. style and settings
    page.click("#tab_style-button")
    keywords = page.locator("#style_keywords")
    for keyword in ("comic style", "vivid colors", "medium shot"):
        keywords.get_by_label(keyword, exact=True).check()
    assert "nude" in page.locator("#negative_prompt textarea").input_value()
    fill_number(page, "#candidates", 2)
    page.locator("#comic_title textarea, #comic_title input").first.fill("The Apple")
    shoot(page, workdir, "03_style.png")

    # ---------------------------------------------------------------- 4. comic
    page.click("#tab_comic-button")
    page.click("#generate_button")
    wait_for_text(page, "#generate_status", "Done: 3 panels on 1 page")
    panels = page.locator("#panels_gallery .thumbnail-item img, #panels_gallery img")
    assert panels.count() >= 3
    gallery_text = page.inner_text("#panels_gallery")
    assert "no face found" in gallery_text
    page.wait_for_selector("#pages_gallery img")
    page.locator("#downloads a").first.wait_for()
    names = page.inner_text("#downloads").replace("\n", "")  # "comic\n.pdf" -> "comic.pdf"
    for expected in ("page_1.png", "comic.pdf", "comic.zip", "project.json"):
        assert expected in names, names
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, workdir, "04_comic.png")

    # ---------------------------------------------------------------- candidates, redraw, reopen
    page.locator("#panels_gallery button.thumbnail-item").nth(0).click()  # panel 1
    page.wait_for_function("document.querySelector('#candidate_panel input').value === '1'")
    page.keyboard.press("Escape")
    page.click("#candidate_show")
    thumbs = page.locator("#candidates_gallery button.thumbnail-item")
    thumbs.nth(1).wait_for()
    assert thumbs.count() == 2
    unused = 1 if "(in the comic)" in thumbs.nth(0).inner_text() else 0
    thumbs.nth(unused).click()
    page.wait_for_function(
        f"document.querySelector('#candidate_number input').value === '{unused + 1}'")
    page.keyboard.press("Escape")
    page.click("#candidate_use")
    wait_for_text(page, "#generate_status", f"Panel 1 now shows candidate {unused + 1}")
    assert f"(candidate {unused + 1} of 2)" in page.inner_text("#panel_notes").splitlines()[1]

    fill_number(page, "#redraw_panel", 2)
    page.locator("#redraw_seed textarea, #redraw_seed input").first.fill("777")
    page.click("#redraw_button")
    wait_for_text(page, "#generate_status", "Redrew panel 2 with seed 777")
    page.click("#tab_story-button")  # the panel's row now carries its seed
    page.locator('#panels_table [role="gridcell"][data-col="2"]').filter(has_text="777").wait_for()
    assert _cell_texts(page, column=2) == ["", "777", ""]
    page.click("#tab_comic-button")

    with page.expect_download() as download:
        page.locator('#downloads a[href$="comic.zip"]').first.click()
    saved = workdir / "comic.zip"
    download.value.save_as(str(saved))
    page.reload()  # a new session: nothing drawn, empty cast
    page.wait_for_selector("#train_name")
    page.click("#tab_comic-button")
    page.click("#project_section")
    page.locator("#project_file input[type=file]").set_input_files(str(saved))
    page.locator("#project_file").filter(has_text="comic").first.wait_for()
    page.click("#project_open")
    wait_for_text(page, "#project_info", "Opened **comic.zip**".replace("**", ""))
    page.click("#generate_button")
    wait_for_text(page, "#generate_status", "Done: 3 panels on 1 page")
    rows = page.inner_text("#panel_notes").splitlines()  # header, then one line per panel
    assert f"(candidate {unused + 1} of 2)" in rows[1]  # the hand-picked candidate came back
    assert rows[2].endswith("\t777")  # and the redrawn panel's seed

    # ---------------------------------------------------------------- my comics
    page.reload()  # both comics were kept; one click on the older reopens it, pages at once
    page.wait_for_selector("#train_name")
    page.click("#tab_comic-button")
    kept = page.locator("#my_comics_gallery button.thumbnail-item")
    kept.nth(1).wait_for()
    assert kept.count() == 2 and "The Apple" in page.inner_text("#my_comics_gallery")
    kept.nth(1).click()
    wait_for_text(page, "#generate_status", "Opened The Apple")
    page.wait_for_selector("#pages_gallery img")
    page.locator('#downloads a[href$="comic.pdf"]').first.wait_for()
    page.click("#tab_story-button")  # its panels are back in the table, seeds included
    page.locator('#panels_table [role="gridcell"][data-col="2"]').filter(has_text="777").wait_for()


def _cell_texts(page, column: int) -> list[str]:
    """One column of the panel table, as shown (cells are ``cell-<row>-<column>``)."""
    cells = page.locator(f'#panels_table [role="gridcell"][data-col="{column}"]')
    return [text.strip() for text in cells.all_inner_texts()]


def _row_texts(page) -> list[str]:
    """The Text column of the panel table."""
    return _cell_texts(page, column=0)
