"""Multi-user mode and restarts against a real ``python app.py --preset tiny --multi-user`` server.

Two ``gradio_client`` users, each signed in with a key of their own (as a browser keeps one):
neither can list, see, use, delete or cancel the other's identities, jobs or comics; both see the
shared read-only example. Then the restart test: one user queues two jobs, the server is killed
with SIGKILL while the first trains, and a new server on the same folder shows the first as
interrupted with a message, runs the second, and still lists the saved comic.
"""

from __future__ import annotations

import secrets
import signal
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

pytest.importorskip("gradio_client")
from app_client import wait_for_job  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from browser.app_server import app_process, save_test_faces  # noqa: E402
from identities.library import IdentityLibrary  # noqa: E402
from identities.owners import USERS_FOLDER, owner_from_key  # noqa: E402
from serving.store import DB_FILE, Store  # noqa: E402

pytestmark = pytest.mark.slow

SETTINGS = ["comic book", [], "", 3, False, 2, 7.5, 64, 64, 1, "Ada's day"]


def signed_in(url: str, key: str) -> Client:
    client = Client(url, verbose=False, download_files=True)
    assert client.predict(key, api_name="/sign_in") == key
    return client


def train(client: Client, photo: Path, name: str, steps: int) -> str:
    _status, job_id, *_ = client.predict(handle_file(str(photo)), name, "he", True, steps, [],
                                         api_name="/train")
    return job_id


def captions(client: Client) -> list[str]:
    gallery, _choice, _summary, _message = client.predict(api_name="/library")
    return [item["caption"] for item in gallery]


def _file_urls(value) -> dict[str, str]:
    """{file name: URL} of every file in an API answer fetched with ``download_files=False``."""
    found, stack = {}, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("url"), str) and isinstance(item.get("path"), str):
                found[Path(item["path"]).name] = item["url"]
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return found


def _visitor_files_stay_private(url: str, key_a: str, comic_id: str, b: Client) -> None:
    """Issue 23, item 4: A's comic.zip, PDF, pages and face are served to A's visit only; B (or
    a request without A's visit cookie) gets 404 for the same URLs."""
    a = Client(url, verbose=False, download_files=False)
    assert a.predict(key_a, api_name="/sign_in") == key_a
    urls = _file_urls(a.predict(comic_id, api_name="/open_comic"))
    gallery = a.predict(api_name="/library")[0]
    assert gallery[0]["caption"] == "Hugh Jackman (he)"  # A's own identity; then the example
    urls.update(_file_urls(gallery[0]))
    assert {"comic.zip", "comic.pdf", "page_1.png", "face.png"} <= set(urls), urls
    for name in ("comic.zip", "comic.pdf", "page_1.png", "face.png"):
        link = urls[name] if urls[name].startswith("http") else url.rstrip("/") + urls[name]
        assert httpx.get(link, cookies=a.cookies).status_code == 200, name
        assert httpx.get(link, cookies=b.cookies).status_code == 404, name
        assert httpx.get(link).status_code == 404, name


def test_private_identities_and_comics_survive_a_kill(tmp_path):
    faces = save_test_faces(tmp_path / "faces")
    examples, library, log = tmp_path / "examples", tmp_path / "data", tmp_path / "server.log"
    IdentityLibrary(examples).add("Alan Turing", torch.randn(2, 32), torch.randn(2, 64),
                                  pronouns="he", face=np.full((64, 64, 3), 90, np.uint8))
    key_a, key_b = secrets.token_hex(16), secrets.token_hex(16)
    args = ("--multi-user", "--examples", str(examples))

    with app_process(library, log, *args) as (server, url):
        a, b = signed_in(url, key_a), signed_in(url, key_b)
        assert b.predict("not-a-key", api_name="/sign_in") != "not-a-key"  # a fresh key instead
        b = signed_in(url, key_b)
        job = train(a, faces["astronaut"], "Hugh Jackman", 3)
        assert wait_for_job(a, job)["status"] == "done"
        assert captions(a) == ["Hugh Jackman (he)", "Alan Turing (he) · example"]
        assert captions(b) == ["Alan Turing (he) · example"]
        # b can neither see, use, delete nor cancel a's identity or job
        for call in ((job, "/job_status"), ("Hugh Jackman", "/identity"),
                     ("Hugh Jackman", "/cast_add"), ("Hugh Jackman", "/library_delete"),
                     ([job], "/cancel_training")):
            with pytest.raises(AppError):
                b.predict(call[0], api_name=call[1])
        with pytest.raises(AppError, match="shipped example"):
            b.predict("Alan Turing", api_name="/library_delete")

        # a draws a comic: kept in a's My comics only
        a.predict("Hugh Jackman", api_name="/cast_add")
        rows, _info = a.predict("Hugh Jackman ate an apple.", api_name="/parse")
        *_, status, pages, files, _seed, _notes = a.predict(rows, *SETTINGS, api_name="/generate")
        assert status.startswith("Done") and pages
        gallery, summary, = a.predict(api_name="/my_comics")
        assert len(gallery) == 1 and gallery[0]["caption"].startswith("Ada's day · ")
        assert b.predict(api_name="/my_comics")[0] == []
        comic_id = Store(library / DB_FILE).comics()[0].id
        for endpoint in ("/open_comic", "/delete_comic"):
            with pytest.raises(AppError, match="not among your saved comics"):
                b.predict(comic_id, api_name=endpoint)
        _visitor_files_stay_private(url, key_a, comic_id, b)

        # the restart: two jobs queued, SIGKILL while the first trains
        long_job = train(a, faces["grace_hopper"], "Taylor Swift", 5000)
        # the second photo is checked once the first job is past its own face detection
        wait_for_job(a, long_job, until=lambda j: j["status"] == "running" and j["step"] >= 1)
        short_job = train(a, faces["astronaut"], "Ada Lovelace", 2)
        assert a.predict(short_job, api_name="/job_status")["status"] == "queued"
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)

    with app_process(library, log, *args) as (_server, url):
        a, b = signed_in(url, key_a), signed_in(url, key_b)
        interrupted = a.predict(long_job, api_name="/job_status")
        assert interrupted["status"] == "interrupted" and interrupted["finished"]
        assert "server restarted" in interrupted["message"] and "Train again" in interrupted["message"]
        assert wait_for_job(a, short_job)["status"] == "done"
        assert captions(a) == ["Ada Lovelace (he)", "Hugh Jackman (he)", "Alan Turing (he) · example"]
        with pytest.raises(AppError):
            b.predict(short_job, api_name="/job_status")
        # the saved comic is still there and opens at once, pages and downloads included
        gallery, _summary = a.predict(api_name="/my_comics")
        assert len(gallery) == 1
        opened = a.predict(comic_id, api_name="/open_comic")
        rows_back, *_rest = opened
        assert [r[0] for r in rows_back["data"]] == [r[0] for r in rows["data"]]
        shown_pages, files_back, status_back = opened[-6], opened[-5], opened[-2]
        assert "Opened **Ada's day**" in status_back and len(shown_pages) == len(pages)
        assert opened[-1] == "Hugh Jackman ate an apple."  # the story comes back too
        assert sorted(Path(f).name for f in files_back) == ["comic.cbz", "comic.pdf", "comic.zip", "page_1.png",
                                                           "project.json"]
        a.predict(comic_id, api_name="/delete_comic")
        assert a.predict(api_name="/my_comics")[0] == []

    # on disk: one private library per key, named by a hash; nothing half-written listed
    users = library / USERS_FOLDER
    assert sorted(p.name for p in users.iterdir()) == [owner_from_key(key_a).folder]
    assert IdentityLibrary(users / owner_from_key(key_a).folder).problems() == []
    assert not any(key_a in str(p) or key_b in str(p) for p in library.rglob("*"))
    # the database (and its log) holds the browser keys only as their HMAC
    stored = b"".join(p.read_bytes() for p in library.glob(DB_FILE + "*") if p.is_file())
    assert stored and key_a.encode() not in stored and key_b.encode() not in stored
    store = Store(library / DB_FILE)
    assert {j.status for j in store.jobs(owner_from_key(key_a).id)} == {"done", "interrupted"}
    assert "Traceback" not in log.read_text(errors="replace")
