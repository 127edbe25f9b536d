"""Multi-user mode in a real browser: each browser keeps its owner key in local storage.

One browser trains an identity; a reload and a server restart (same port, so the same origin and
local storage) still show it, because the key survives and the browser's storage is encrypted
with a secret kept in the database; a second browser (fresh storage) sees none of it, and gets
404 for the first one's face link.
"""

from __future__ import annotations

import pytest

from browser.app_server import app_process, free_port, save_test_faces
from browser.test_browser_flow import (CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, fill_number, sync_api,
                                       train, wait_for_text)

pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed"),
]


def _open(browser, url: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.wait_for_selector("#train_name")
    return context, page


def test_each_browser_keeps_its_own_library_across_reloads_and_restarts(tmp_path):
    faces = save_test_faces(tmp_path / "faces")
    library, log, port = tmp_path / "data", tmp_path / "server.log", free_port()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            with app_process(library, log, "--multi-user", port=port) as (_server, url):
                _context, page = _open(browser, url)
                wait_for_text(page, "#library_summary", "0 identities in your library")
                page.click("#train_advanced")
                fill_number(page, "#train_steps", 2)
                train(page, faces["astronaut"], "Hugh Jackman", "he")
                wait_for_text(page, "#library_gallery", "Hugh Jackman (he)")
                page.reload()
                page.wait_for_selector("#train_name")
                wait_for_text(page, "#library_summary", "1 identity in your library")
                other, stranger = _open(browser, url)  # fresh local storage: another owner
                wait_for_text(stranger, "#library_summary", "0 identities in your library")
                assert "Hugh Jackman" not in stranger.inner_text("#library_gallery")
                # the face's link opens in its own browser only (the visit cookie, issue 23)
                face = page.get_attribute("#library_gallery img", "src")
                status = "src => fetch(src).then(r => r.status)"
                assert page.evaluate(status, face) == 200
                assert stranger.evaluate(status, face) == 404
                other.close()
            with app_process(library, log, "--multi-user", port=port) as (_server, url):
                page.goto(url)  # the same browser after a restart
                page.wait_for_selector("#train_name")
                wait_for_text(page, "#library_summary", "1 identity in your library")
                wait_for_text(page, "#library_gallery", "Hugh Jackman (he)")
                wait_for_text(page, "#train_progress", "Hugh Jackman is ready")  # its job, found
        finally:
            browser.close()
