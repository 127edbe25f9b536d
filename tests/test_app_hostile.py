"""The app against hostile files, and what it leaves on disk.

* The app code (``Studio.open_project``) refuses a 5 GB zip bomb in one line with bounded memory.
* Settings that are not finite or over the limits are one line each.
* Run folders: a killed run's folder is removed at the next start, a live one never.
* End to end (slow): a real ``app.py --preset tiny`` with its own ``TMPDIR``: a non-image refused
  in one plain line through the API, a photo uploaded and
  a comic.zip drawn through gradio_client, a zip bomb opened through the API (refused, server
  memory within 100 MB), then SIGTERM: nothing of that run remains on disk.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import httpx
import pytest
import torch

from configs import load_config, load_limits
from core.run_folder import GRACE_S, LOCK, PREFIX, open_run_folder, remove_stale
from session import Session, Studio, StudioError, user_message

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser.app_server import ROOT, app_env, free_port, save_test_faces  # noqa: E402
from hostile import zip_bomb  # noqa: E402

MB = 1 << 20


@pytest.fixture()
def studio(tmp_path):
    studio = Studio(load_config("tiny").replace(library_dir=str(tmp_path / "lib")), None,
                    load_error="not loaded in this test", export_root=tmp_path / "downloads")
    yield studio
    studio.shutdown()


def test_the_app_refuses_a_zip_bomb_with_bounded_memory(studio, tmp_path):
    bomb = zip_bomb(tmp_path / "comic.zip")
    session = Session()
    tracemalloc.start()
    try:
        with pytest.raises(Exception) as info:
            studio.open_project(session, str(bomb))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = user_message(info.value)
    assert "limits.yaml: json_bytes" in message and "\n" not in message
    assert str(tmp_path) not in message  # the server's folders are not shown
    assert peak < 100 * MB and session.restored is None and session.cast == []


@pytest.mark.parametrize("field, value, fragment", [
    ("steps", 10**12, "steps 1000000000000 is over the limit of 500 (limits.yaml: steps)"),
    ("steps", float("inf"), "steps must be a finite number"),
    ("width", 2**40, "the width 1099511627776 for the 'tiny' preset is over the limit of 512"),
    ("height", 100, "must be a positive multiple of 8 pixels"),
    ("guidance", float("nan"), "guidance must be a finite number"),
    ("guidance", "Infinity", "guidance must be a finite number"),
    ("guidance", 1e9, "(limits.yaml: guidance)"),
    ("candidates", 17, "(limits.yaml: candidates)"),
])
def test_settings_over_the_limits_are_one_line(studio, field, value, fragment):
    settings = dict(style=None, keywords=[], negative="", seed=0, randomize=False, steps=4,
                    guidance=7.5, width=64, height=64, candidates=1, title="")
    settings[field] = value
    with pytest.raises(ValueError) as info:
        studio.settings_from(*settings.values())
    assert fragment.lower() in user_message(info.value).lower(), user_message(info.value)


def test_user_messages_escape_control_and_direction_characters():
    text = user_message(StudioError("the name 'Ada\u202eevil\x1b[31m' is taken"))
    assert "\u202e" not in text and "\x1b" not in text and "\\u202e" in text


def _hold_run_folder(parent: Path) -> subprocess.Popen:
    """A child process that opens a run folder under ``parent`` and waits."""
    code = ("import sys, time; from pathlib import Path; from core.run_folder import open_run_folder; "
            f"f = open_run_folder(Path({str(parent)!r})); print(f.path, flush=True); time.sleep(120)")
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)


def test_a_killed_runs_folder_is_removed_at_the_next_start_and_a_live_one_kept(tmp_path):
    killed, alive = _hold_run_folder(tmp_path), _hold_run_folder(tmp_path)
    try:
        killed_path, alive_path = Path(killed.stdout.readline().strip()), Path(alive.stdout.readline().strip())
        (killed_path / "downloads" / "comic.zip").write_bytes(b"the cast's vectors")
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        old = time.time() - GRACE_S - 5
        for path in (killed_path, alive_path):
            os.utime(path, (old, old))
        unrelated = tmp_path / f"{PREFIX}nolock"
        unrelated.mkdir()
        os.utime(unrelated, (old, old))
        mine = open_run_folder(tmp_path)
        assert not killed_path.exists() and alive_path.exists() and unrelated.exists()
        assert (mine.path / LOCK).is_file() and mine.uploads.is_dir() and mine.downloads.is_dir()
        assert remove_stale(tmp_path) == []  # mine is held by this process
        mine.remove()
        assert not mine.path.exists()
    finally:
        for process in (killed, alive):
            process.kill()
            process.wait(timeout=30)


# ----------------------------------------------------------------------------- end to end


def _answer(client, *args, api_name: str) -> str:
    """The app's answer as text, whether it came back as outputs or as an error."""
    from gradio_client.exceptions import AppError

    try:
        return repr(client.predict(*args, api_name=api_name))
    except AppError as exc:
        return str(exc)


def _rss_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"{key} not in /proc/{pid}/status")


def _files_of_the_run(tmp: Path) -> list[Path]:
    suffixes = {".png", ".jpg", ".zip", ".pdf", ".json", ".webp"}
    return [p for p in tmp.rglob("*") if p.is_file() and p.suffix in suffixes] + \
        list(tmp.glob(f"{PREFIX}*"))


@pytest.mark.slow
def test_sigterm_leaves_nothing_of_the_run_on_disk(tmp_path):
    pytest.importorskip("gradio_client")
    from gradio_client import Client, handle_file

    from identities.library import IdentityLibrary

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    library = IdentityLibrary(tmp_path / "library")
    g = torch.Generator().manual_seed(0)
    library.add("Ada Lovelace", torch.randn(2, 32, generator=g) * 0.05,
                torch.randn(2, 64, generator=g) * 0.05, pronouns="she")
    faces = save_test_faces(tmp_path / "faces")
    bomb = zip_bomb(tmp_path / "bomb.zip")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**app_env(), "TMPDIR": str(tmp)}
    env.pop("GRADIO_TEMP_DIR", None)
    log = open(tmp_path / "server.log", "wb")
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--preset", "tiny", "--library",
                               str(library.root), "--host", "127.0.0.1", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text(errors="replace")[-3000:]
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.5)
        client = Client(url, verbose=False, download_files=False)
        # a non-image through the API: a plain reason, not "upstream Gradio app has raised ..."
        text_file = tmp_path / "notes.png"
        text_file.write_text("not a picture")
        answer = _answer(client, handle_file(str(text_file)), api_name="/check_photo")
        assert "not a readable image" in answer and "upstream" not in answer, answer
        # a photo uploaded (refused after upload: the name is taken), then a comic drawn
        answer = _answer(client, handle_file(str(faces["astronaut"])), "Ada Lovelace", "she", True,
                         1, [], api_name="/train")
        assert "already exists" in answer, answer
        client.predict("Ada Lovelace", api_name="/cast_add")
        rows = {"headers": ["Text", "Characters", "Seed"], "metadata": None,
                "data": [["Ada Lovelace waves.", "Ada Lovelace", ""]]}
        client.predict(rows, "comic book", [], "blurry", 3, False, 1, 7.5, 64, 64, 1, "T",
                       api_name="/generate")
        written = _files_of_the_run(tmp)
        assert any(p.name == "comic.zip" for p in written), written
        assert any(p.name == "astronaut.png" for p in written), written  # the upload, cached
        # the zip bomb through the API: one line, and the server's memory stays put
        Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS from here
        before = _rss_mb(server.pid, "VmRSS")
        started = time.monotonic()
        answer = _answer(client, handle_file(str(bomb)), api_name="/open_project")
        seconds = time.monotonic() - started
        assert "limits.yaml: json_bytes" in answer, answer
        growth = _rss_mb(server.pid, "VmHWM") - before
        assert growth < 100, f"peak RSS grew by {growth:.0f} MB"
        print(f"zip bomb through the API: refused in {seconds:.2f} s, peak RSS +{growth:.0f} MB")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        log.close()
    assert server.returncode is not None
    assert _files_of_the_run(tmp) == [], _files_of_the_run(tmp)
    assert library.names() == ["Ada Lovelace"]  # the library is kept: it is the user's data
