"""For readers, in a real browser: a description typed in the library reaches the panel prompt,
a bubble's tail points at its speaker (screenshot ``09_speaker_bubble.png``), and the comic is
offered as ``comic.cbz`` with a ComicInfo.xml that passes the schema check.

The two identities are written straight into the library (tiny-preset vectors and a face crop)
instead of being trained, so the test takes about a minute. Skips without Debian's chromium.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from browser.app_server import running_app, save_test_faces
from test_pipe_cbz import check_cbz  # the ComicInfo 2.0 checker

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
TIMEOUT_MS = 60_000
SCARF = "short grey hair, red scarf"
STORY = 'Ada Lovelace met Alan Turing at the station. Ada said, "Hello there!"'


def _library(folder: Path, faces: dict[str, Path]) -> Path:
    """Ada Lovelace (she) and Alan Turing (he), with tiny-preset vectors (2 x 32, 2 x 64)."""
    from PIL import Image

    from identities.library import IdentityLibrary

    library = IdentityLibrary(folder)
    g = torch.Generator().manual_seed(0)
    for name, pronouns, face in (("Ada Lovelace", "she", "grace_hopper"),
                                 ("Alan Turing", "he", "astronaut")):
        crop = np.asarray(Image.open(faces[face]).convert("RGB").resize((128, 128)))
        library.add(name, torch.randn(2, 32, generator=g) * 0.01,
                    torch.randn(2, 64, generator=g) * 0.01, face=crop, pronouns=pronouns)
    return folder


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    work = tmp_path_factory.mktemp("readers")
    library = _library(work / "library", save_test_faces(work / "faces"))
    with running_app(library, work / "server.log") as url:
        yield url, work


def _wait_text(page, selector: str, text: str) -> None:
    page.locator(selector).filter(has_text=text).first.wait_for()


def test_description_speaker_bubble_and_cbz(served):
    url, work = served
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        try:
            page.goto(url)
            page.wait_for_selector("#library_gallery img")
            for caption in ("Ada Lovelace (she)", "Alan Turing (he)"):
                page.click(f'#library_gallery button:has(img[alt="{caption}"])')
                _wait_text(page, "#library_details", caption.split(" (")[0])
                if caption.startswith("Ada"):  # a description, typed in the library view
                    page.locator("#identity_description textarea").fill(SCARF)
                    page.click("#description_save")
                    _wait_text(page, "#library_message", "saved in the library")
                    _wait_text(page, "#library_details", SCARF)
                page.click("#cast_add")
                _wait_text(page, "#cast_list", caption.split(" (")[0])

            page.click("#tab_story-button")
            page.locator("#story_text textarea").fill(STORY)
            page.click("#story_parse")
            _wait_text(page, "#story_info", "offline parser")
            speaker = page.locator('#panels_table [role="gridcell"][data-col="4"]')
            speaker.filter(has_text="Ada Lovelace").first.wait_for()  # the Speaker column

            page.click("#tab_comic-button")
            page.click("#generate_button")
            _wait_text(page, "#generate_status", "Done: 2 panels")
            card = page.inner_text("#card_1_text")
            assert f"Ada Lovelace ({SCARF})" in card, card  # the description is in the prompt
            page.wait_for_selector("#pages_gallery img")
            _wait_text(page, "#downloads_list", "comic.cbz")
            page.locator("#pages_gallery").scroll_into_view_if_needed()
            page.add_style_tag(content=".toast-wrap { display: none !important; }")
            shot = work / "09_speaker_bubble.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            href = page.locator('#downloads_list a[href$="comic.cbz"]').first.get_attribute("href")
            page_href = page.locator('#downloads_list a[href$="page_1.png"]').first \
                .get_attribute("href")
        finally:
            browser.close()
    cbz = httpx.get(url.rstrip("/") + href, timeout=30)
    assert cbz.status_code == 200
    root = check_cbz(cbz.content)
    assert root.findtext("Characters") == "Ada Lovelace, Alan Turing"
    assert root.findtext("Summary") == STORY and root.findtext("PageCount") == "1"
    with zipfile.ZipFile(io.BytesIO(cbz.content)) as archive:
        assert archive.read("001.png") == httpx.get(url.rstrip("/") + page_href, timeout=30).content
