"""Style LoRAs in a real browser: the Style step lists the server's LoRAs (``--loras DIR``) with
a weight each; a weight typed into the table reaches the comic (its project.json names the LoRA).

Uses the system chromium like test_browser_flow.py, and skips where there is none.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import urljoin

import pytest
from browser.app_server import running_app

from bench.fake_checkpoints import write_lora

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                       "(apt-get install chromium); the browser test needs it"),
]
sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]


def edit_cell(page, cell, value: str) -> None:
    """Type ``value`` into a Gradio Dataframe cell (double-click opens its editor)."""
    cell.dblclick()
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    page.keyboard.press("Enter")


def test_a_lora_chosen_on_the_style_step_reaches_the_comic(tmp_path: Path):
    write_lora(tmp_path / "loras" / "inked.safetensors", seed=1)
    with running_app(tmp_path / "library", tmp_path / "server.log", "--loras",
                     str(tmp_path / "loras")) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(60_000)
        try:
            page.goto(url)
            page.wait_for_selector("#train_name")
            page.click("#tab_story-button")
            row = page.locator("#panel_row input[type=number]")
            row.fill("0")
            row.press("Tab")
            page.click("#panel_add")  # one blank row at the end; its text typed into the table
            panels = page.locator("#panels_table")
            edit_cell(page, panels.locator('[data-testid="cell-0-0"]'), "A quiet street at night")
            panels.filter(has_text="quiet street").wait_for()

            page.click("#tab_style-button")
            loras = page.locator("#style_loras")
            loras.filter(has_text="inked").wait_for()  # listed, weight 0 (off)
            edit_cell(page, loras.locator('[data-testid="cell-0-1"]'), "0.8")
            loras.filter(has_text="0.8").wait_for()

            page.click("#tab_comic-button")
            page.click("#generate_button")
            page.locator("#generate_status").filter(has_text="Done: 1 panel").first.wait_for(timeout=180_000)
            link = page.locator('#downloads_list a[href$="project.json"]').first
            project = json.loads(page.request.get(urljoin(url, link.get_attribute("href"))).text())
            assert project["loras"] == [{"name": "inked", "weight": 0.8}]
        finally:
            browser.close()
