"""Four gradio_client users at once on one ``python app.py --preset tiny`` server.

Each client, first alone and then all four together for three rounds, trains an identity from
its own photo (a few steps), puts it in its cast, parses a story, draws it (2 candidates per
panel), redraws a panel and opens the saved project again. The server must stay up, every
training job must end (done, or failed with a message), every picture must equal, pixel for
pixel, what that client got alone with the same seeds (a request that saw another session's
identity, rows or scheduler state would differ), and the server log must hold no traceback.
"""

from __future__ import annotations

import io
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio_client")
from app_client import wait_for_job  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402

from browser.app_server import running_app, save_test_faces  # noqa: E402

pytestmark = pytest.mark.slow

CLIENTS = 4
ROUNDS = 3
TRAIN_STEPS = 1
JOB_TIMEOUT_S = 240.0
POLL_S = 0.5  # each gradio_client call costs ~80 ms of CPU: poll the queue gently
FIRST = ("Ada", "Alan", "Grace", "Linus")  # client k's first name
LAST = ("Abbot", "Baker", "Carver", "Dalton")  # round r's last name (0: the lone run)
STORY = "{name} opened the red door under the moon."
PLACEHOLDER = "<name>"


@dataclass(frozen=True)
class Outcome:
    """What one client saw in one round, with its identity's name replaced by PLACEHOLDER."""

    job: dict
    rows: list[list[str]]
    drawn: dict[str, np.ndarray]  # every panel and candidate PNG of the comic.zip
    redrawn: dict[str, np.ndarray]
    reopened_rows: list[list[str]]
    reopened_info: str


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("stress")


@pytest.fixture(scope="module")
def photos(workdir) -> list[Path]:
    """Four different photos: the two offline faces and their mirror images."""
    faces = save_test_faces(workdir / "faces")
    out = []
    for key in ("astronaut", "grace_hopper"):
        mirrored = workdir / "faces" / f"{key}_mirrored.png"
        Image.open(faces[key]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored)
        out += [faces[key], mirrored]
    return out


def table(rows: list[list[str]]) -> dict:
    return {"headers": ["Text", "Characters", "Seed"], "data": rows, "metadata": None}


def rows_of(value: dict, name: str) -> list[list[str]]:
    return [[str(c).replace(name, PLACEHOLDER) for c in row] for row in value["data"]]


def zip_pictures(files: list[str]) -> dict[str, np.ndarray]:
    path = next(f for f in files if f.endswith(".zip"))
    with zipfile.ZipFile(path) as archive:
        return {n: np.asarray(Image.open(io.BytesIO(archive.read(n))).convert("RGB"))
                for n in sorted(archive.namelist()) if n.startswith("panels/")}


def scenario(client: Client, k: int, r: int, photo: Path) -> Outcome:
    """Client ``k``'s round ``r``: train, cast, parse, draw, redraw, reopen."""
    name = f"{FIRST[k]} {LAST[r]}"
    _status, job_id, *_ = client.predict(handle_file(str(photo)), name, "they", True, TRAIN_STEPS,
                                         [], api_name="/train")
    job = wait_for_job(client, job_id, JOB_TIMEOUT_S, POLL_S)
    client.predict(name, api_name="/cast_add")
    parsed, _info = client.predict(STORY.format(name=name), api_name="/parse")
    settings = ("comic book", ["comic style"], "nsfw, nude", 11 + 100 * k, False, 2, 7.5, 64, 64, 2,
                f"Client {k}")
    _gallery, status, _pages, files, _seed, _notes = client.predict(
        parsed, *settings, api_name="/generate")
    assert status.startswith("Done: 1 panel"), status
    drawn = zip_pictures(files)
    _g, _p, files, redrawn_rows, status, _n = client.predict(parsed, 1, str(500 + k),
                                                             api_name="/redraw")
    assert f"seed {500 + k}" in status, status
    redrawn = zip_pictures(files)
    restored = client.predict(handle_file(next(f for f in files if f.endswith(".zip"))),
                              api_name="/open_project")
    client.predict(name, api_name="/cast_remove")  # the next round's story has its own name
    return Outcome(job={key: str(job[key]).replace(name, PLACEHOLDER)
                        for key in ("status", "message", "step", "total")},
                   rows=rows_of(parsed, name), drawn=drawn, redrawn=redrawn,
                   reopened_rows=rows_of(restored[0], name),
                   reopened_info=restored[1].replace(name, PLACEHOLDER))


def same_pictures(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[n], b[n]) for n in a)


def test_four_clients_at_once_get_what_each_gets_alone(workdir, photos):
    log = workdir / "server.log"
    started = time.perf_counter()
    with running_app(workdir / "library", log) as url:
        clients = [Client(url, verbose=False, download_files=True) for _ in range(CLIENTS)]
        alone = [scenario(clients[k], k, 0, photos[k]) for k in range(CLIENTS)]

        def rounds(k: int) -> list[Outcome]:
            return [scenario(clients[k], k, r, photos[k]) for r in range(1, ROUNDS + 1)]

        with ThreadPoolExecutor(CLIENTS) as pool:
            together = list(pool.map(rounds, range(CLIENTS)))
        library = clients[0].predict(api_name="/library")[2]  # the server still answers
    seconds = time.perf_counter() - started
    print(f"\nstress: {CLIENTS} clients x {ROUNDS} rounds (+1 alone each) in {seconds:.1f} s")

    assert f"{CLIENTS * (ROUNDS + 1)} identities in your library" in library
    for k, outcomes in enumerate(together):
        reference = alone[k]
        assert reference.job["status"] == "done", reference.job
        assert len(reference.drawn) >= 2, reference.drawn.keys()  # both candidates at least
        for r, got in enumerate(outcomes, start=1):
            where = f"client {k}, round {r}"
            assert got.job["status"] in ("done", "failed"), (where, got.job)
            assert got.job["status"] == "done" or got.job["message"], (where, got.job)
            assert got.job == reference.job, where
            assert got.rows == reference.rows and got.reopened_rows == reference.reopened_rows, where
            assert got.reopened_info == reference.reopened_info, where
            assert same_pictures(got.drawn, reference.drawn), f"{where}: comic pixels differ"
            assert same_pictures(got.redrawn, reference.redrawn), f"{where}: redraw pixels differ"
    # the clients' pictures differ from each other (else a mix-up could not show)
    assert not same_pictures(alone[0].drawn, alone[1].drawn)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
