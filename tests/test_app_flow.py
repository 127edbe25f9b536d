"""The web app end to end: gradio_client drives a real ``python app.py --preset tiny`` server.

Train two identities from real offline faces, build a cast, parse the seed's story offline, draw
the comic (best of 2), download the PDF, pick a candidate, redraw a panel, reopen the saved project
in a fresh session and draw it again: same pixels. Bad inputs come back as one-line errors and
the app keeps working; two sessions keep separate casts and stories.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio_client")
from app_client import wait_for_job  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from browser.app_server import SEED_STORY, running_app, save_test_faces  # noqa: E402

pytestmark = pytest.mark.slow

TRAIN_STEPS = 3
SETTINGS = dict(style="comic book", keywords=["comic style", "vivid colors"],
                negative="nsfw, nude, naked, nudity", seed_value=5, randomize=False,
                steps_value=2, guidance_value=7.5, width_value=64, height_value=64,
                candidates_value=2, title="The Apple")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("app_flow")


@pytest.fixture(scope="module")
def faces(workdir) -> dict[str, Path]:
    return save_test_faces(workdir / "faces")


@pytest.fixture(scope="module")
def server(workdir):
    with running_app(workdir / "library", workdir / "server.log") as url:
        yield url


def client_for(url: str) -> Client:
    return Client(url, verbose=False, download_files=True)


def train(client: Client, photo: Path, name: str, pronouns: str, steps: int = TRAIN_STEPS):
    return client.predict(handle_file(str(photo)), name, pronouns, True, steps, [],
                          api_name="/train")


@pytest.fixture(scope="module")
def trained(server, faces) -> dict[str, dict]:
    """Hugh Jackman (astronaut) and Taylor Swift (Grace Hopper), trained through the app."""
    client = client_for(server)
    jobs = {}
    for name, pronouns, photo in (("Hugh Jackman", "he", faces["astronaut"]),
                                  ("Taylor Swift", "she", faces["grace_hopper"])):
        status, job_id, remembered, html, _timer = train(client, photo, name, pronouns)
        assert job_id and job_id in remembered and job_id in html
        assert "submitted: its progress is shown below" in status and name in status
        jobs[name] = job_id
    return {name: wait_for_job(client, job_id) for name, job_id in jobs.items()}


def table(rows: list[list[str]]) -> dict:
    from pipelines.panel_table import HEADERS

    rows = [list(row) + [""] * (len(HEADERS) - len(row)) for row in rows]
    return {"headers": HEADERS, "data": rows, "metadata": None}


def rows_of(value: dict) -> list[list[str]]:
    return [[str(c) for c in row] for row in value["data"]]


def generate(client: Client, rows, **overrides):
    settings = {**SETTINGS, **overrides}
    return client.predict(table(rows), *settings.values(), api_name="/generate")


def zip_panels(path: str) -> list[np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        names = sorted(n for n in archive.namelist()
                       if n.startswith("panels/") and "_c" not in Path(n).stem)
        return [np.asarray(Image.open(io.BytesIO(archive.read(n))).convert("RGB")) for n in names]


def by_suffix(files: list[str], suffix: str) -> str:
    found = [f for f in files if f.endswith(suffix)]
    assert found, f"no {suffix} among {files}"
    return found[0]


# ----------------------------------------------------------------------------- training


def test_training_runs_in_the_background_and_fills_the_library(server, trained):
    for name, job in trained.items():
        assert job["status"] == "done", job
        assert job["step"] == job["total"] == TRAIN_STEPS
        assert name in job["message"] and "saved" in job["message"]
    client = client_for(server)
    gallery, _choice, summary, message = client.predict(api_name="/library")
    assert message == ""  # the Characters step's message line: cleared after a success
    captions = [item["caption"] for item in gallery]
    assert "Hugh Jackman (he)" in captions and "Taylor Swift (she)" in captions
    assert "2 identities in your library" in summary
    face, details, _ = client.predict("Hugh Jackman", api_name="/identity")
    assert Image.open(face).size == (512, 512)  # the aligned reference crop
    assert "Hugh Jackman" in details and f"{TRAIN_STEPS} steps" in details


def test_jobs_wait_in_line_with_their_position_and_deletion_needs_confirmation(server, faces):
    client = client_for(server)
    _, first, *_ = train(client, faces["astronaut"], "Ada Lovelace", "she", steps=40)
    status, second, remembered, html, _ = train(client, faces["grace_hopper"], "Grace Hopper",
                                                "she", steps=1)
    assert "Grace Hopper: queued, 2nd in line (1 training ahead)" in html, html
    assert first not in remembered  # each call remembers what the browser passed in
    for job_id in (first, second):
        assert wait_for_job(client, job_id)["status"] == "done"

    question, _ = client.predict("Grace Hopper", api_name="/library_delete")
    assert "Delete **Grace Hopper**" in question
    client.predict(api_name="/library_delete_cancel")
    with pytest.raises(AppError, match="(?i)nothing to delete"):
        client.predict(api_name="/library_delete_confirm")
    assert "Grace Hopper" in client.predict("Grace Hopper", api_name="/identity")[1]
    for name in ("Grace Hopper", "Ada Lovelace"):
        client.predict(name, api_name="/library_delete")
        gallery, *_ = client.predict(api_name="/library_delete_confirm")
        assert name not in " ".join(item["caption"] for item in gallery)
    with pytest.raises(AppError, match="(?i)no identity named 'Grace Hopper'"):
        client.predict("Grace Hopper", api_name="/identity")


# ----------------------------------------------------------------------------- the whole flow


def test_story_to_comic_to_pdf_and_back_gives_the_same_pixels(server, trained):
    from pypdf import PdfReader

    client = client_for(server)
    client.predict("Hugh Jackman", api_name="/cast_add")
    cast_text, cast_gallery, *_ = client.predict("taylor swift", api_name="/cast_add")
    assert "Hugh Jackman (he), Taylor Swift (she)" in cast_text and len(cast_gallery) == 2

    parsed, info = client.predict(SEED_STORY, api_name="/parse")
    rows = rows_of(parsed)
    assert len(rows) == 3 and "offline parser" in info
    assert all(row[1] == "Hugh Jackman, Taylor Swift" for row in rows)
    assert not any(" they " in row[0].lower() for row in rows)  # pronouns resolved to names

    gallery, status, pages, files, seed, notes = generate(client, rows)
    assert status.startswith("Done: 3 panels on 1 page") and seed == SETTINGS["seed_value"]
    assert notes.count("Hugh Jackman no face found · Taylor Swift no face found") == 3
    assert "| 5, candidate" in notes and "| 1 | Hugh Jackman was selecting an apple" in notes
    assert len(gallery) == 3 and len(pages) == 1
    for number, (item, row) in enumerate(zip(gallery, rows), start=1):
        assert item["caption"].startswith(f"{number}. {row[0]}")
        # random tiny weights draw noise: the badge says so per character
        assert "Hugh Jackman no face found · Taylor Swift no face found" in item["caption"]
        assert Image.open(item["image"]).size == (64, 64)
    pdf = PdfReader(by_suffix(files, ".pdf"))
    assert len(pdf.pages) >= 1
    assert Image.open(by_suffix(files, "page_1.png")).width == 1600
    project = json.loads(Path(by_suffix(files, "project.json")).read_text())
    assert project["cast"] == ["Hugh Jackman", "Taylor Swift"] and project["title"] == "The Apple"
    assert project["keywords"] == ["comic style", "vivid colors"] and project["candidates"] == 2

    # best of 2: the other candidate can be picked by hand
    candidates, _ = client.predict(1, api_name="/candidates")
    assert len(candidates) == 2 and sum("(in the comic)" in c["caption"] for c in candidates) == 1
    chosen_before = [i for i, c in enumerate(candidates) if "(in the comic)" in c["caption"]][0]
    other = 2 - chosen_before  # 1-based number of the candidate not in the comic
    gallery, candidates, pages, files, status, notes = client.predict(1, other,
                                                                      api_name="/choose_candidate")
    assert f"| 5, candidate {other} of 2 |" in notes.splitlines()[2]  # the table's seed
    assert f"candidate {other}" in status and "(in the comic)" in candidates[other - 1]["caption"]
    assert json.loads(Path(by_suffix(files, "project.json")).read_text())["panels"][0]["candidate"] \
        == other - 1

    # redraw panel 2 with a new seed: its row remembers the seed
    before = zip_panels(by_suffix(files, ".zip"))
    gallery, pages, files, redrawn, status, notes = client.predict(table(rows), 2, "777",
                                                                   api_name="/redraw")
    assert "seed 777" in status and rows_of(redrawn)[1][2] == "777"
    assert "| 777, candidate " in notes.splitlines()[3]
    after = zip_panels(by_suffix(files, ".zip"))
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[2], after[2])
    assert not np.array_equal(before[1], after[1])

    # a fresh session opens the zip: panels, cast and settings come back; drawing again matches
    fresh = client_for(server)
    restored = fresh.predict(handle_file(by_suffix(files, ".zip")), api_name="/open_project")
    (rows_back, project_info, _story_info, cast_back, _cg, _cc, style, keywords, negative, seed,
     randomize, steps, guidance, width, height, n_candidates, title, face_pass, loras_back,
     panels_back, pages_back, files_back, _candidates, notes_back, story_back) = restored
    assert rows_of(rows_back) == [[r[0], r[1], s, "", ""] for r, s in zip(rows, ["5", "777", "7"])]
    assert face_pass is True and not any(row[1] for row in rows_of(loras_back))  # no LoRA chosen
    assert "3 panels, 2 identities inside" in project_info
    assert "Hugh Jackman (he), Taylor Swift (she)" in cast_back
    assert (style, keywords, negative, seed, randomize, steps, guidance, width, height,
            n_candidates, title) == ("comic book", ["comic style", "vivid colors"],
                                     SETTINGS["negative"], 5, False, 2, 7.5, 64, 64, 2, "The Apple")
    # the zip's pictures are shown at once, and the story and cast order come back
    assert len(panels_back) == 3 and len(pages_back) == 1 and files_back
    assert "| 5, candidate" in notes_back and story_back == SEED_STORY
    assert "shown below" in project_info
    again = fresh.predict(rows_back, style, keywords, negative, seed, randomize, steps, guidance,
                          width, height, n_candidates, title, face_pass, api_name="/generate")
    assert again[1].startswith("Done: 3 panels")
    reproduced = zip_panels(by_suffix(again[3], ".zip"))
    assert all(np.array_equal(a, b) for a, b in zip(after, reproduced)) and len(reproduced) == 3
    assert json.loads(Path(by_suffix(again[3], "project.json")).read_text())["panels"][0][
        "candidate"] == other - 1  # the hand-picked candidate is restored too

    # project.json alone (no identities inside) works with the library
    third = client_for(server)
    restored = third.predict(handle_file(by_suffix(files, "project.json")), api_name="/open_project")
    again = third.predict(*restored[:1], *restored[6:18], api_name="/generate")
    assert all(np.array_equal(a, b) for a, b in zip(after, zip_panels(by_suffix(again[3], ".zip"))))


def test_panel_table_controls(server):
    client = client_for(server)
    rows = [["One.", "", ""], ["Two.", "", ""], ["Three.", "", ""]]
    moved, number, _ = client.predict(table(rows), 3, api_name="/panel_up")
    assert [r[0] for r in rows_of(moved)] == ["One.", "Three.", "Two."] and number == 2
    moved, number, _ = client.predict(table(rows), 1, api_name="/panel_down")
    assert [r[0] for r in rows_of(moved)] == ["Two.", "One.", "Three."] and number == 2
    removed, _ = client.predict(table(rows), 2, api_name="/panel_remove")
    assert [r[0] for r in rows_of(removed)] == ["One.", "Three."]
    added, _ = client.predict(table(rows), 1, api_name="/panel_add")
    assert [r[0] for r in rows_of(added)] == ["One.", "", "Two.", "Three."]
    with pytest.raises(AppError, match="(?i)row 9 does not exist; the table has rows 1 to 3"):
        client.predict(table(rows), 9, api_name="/panel_remove")


# ----------------------------------------------------------------------------- errors and sessions


def test_bad_inputs_give_one_line_errors_and_the_app_keeps_working(server, trained, faces, workdir):
    client = client_for(server)
    blank = workdir / "blank.png"
    Image.new("RGB", (256, 256), (128, 128, 128)).save(blank)
    tiny = workdir / "tiny.png"
    Image.fromarray(np.asarray(Image.open(faces["astronaut"]).resize((32, 32)))).save(tiny)
    not_a_project = workdir / "notes.json"
    not_a_project.write_text('{"hello": 1}')
    empty_zip = workdir / "photos.zip"
    with zipfile.ZipFile(empty_zip, "w") as archive:
        archive.writestr("readme.txt", "no project here")
    text_photo = workdir / "notes.png"
    text_photo.write_text("not a picture at all")
    heic = workdir / "phone.heic"  # an iPhone photo's signature: an ISO box of brand "heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    photo = handle_file(str(faces["astronaut"]))
    cases = [
        ((handle_file(str(blank)), "Ann Blank", "she", True, 3, []), "/train", "no face found"),
        ((handle_file(str(tiny)), "Tim Tiny", "he", True, 3, []), "/train", "too small (32x32"),
        ((photo, "47", "he", True, 3, []), "/train", "has no letters"),
        ((photo, "Ann Other", None, True, 3, []), "/train", "choose the person's pronouns"),
        ((handle_file(str(text_photo)), "Ann Other", "she", True, 3, []), "/train",
         "the file is not a readable image"),
        ((handle_file(str(text_photo)),), "/check_photo", "the file is not a readable image"),
        ((handle_file(str(heic)),), "/check_photo", "HEIC images are not supported"),
        ((photo, "Hugh Jackman", "he", True, 3, []), "/train", "already exists"),
        ((None, "Ann Other", "she", True, 3, []), "/train", "upload a photo"),
        (("Nobody Known",), "/cast_add", "no identity named 'Nobody Known'"),
        ((SEED_STORY,), "/parse", "the cast is empty"),
        (("   ",), "/parse", "story is empty"),
        (("Hugh Jackman posed nude.",), "/parse", "refused terms (nude)"),
        ((table([]), *SETTINGS.values()), "/generate", "panel list is empty"),
        ((table([["Bob Smith waved.", "Bob Smith", ""]]), *SETTINGS.values()), "/generate",
         "'Bob Smith' is not in the cast"),
        ((table([["A, B, C and D met.", "Al A, Bo B, Cy C, Di D", ""]]), *SETTINGS.values()),
         "/generate", "4 identities (Al A, Bo B, Cy C, Di D); the 'tiny' preset draws at most 3"),
        ((table([["They kissed naked.", "", ""]]), *SETTINGS.values()), "/generate",
         "text of panel 1 contains refused terms (naked)"),
        ((table([["A cat.", "", "minus"]]), *SETTINGS.values()), "/generate", "not a whole number"),
        ((handle_file(str(not_a_project)),), "/open_project", "not a comic project"),
        ((handle_file(str(blank)),), "/open_project", "invalid file type"),
        ((handle_file(str(empty_zip)),), "/open_project", "the zip holds no project.json"),
        ((1, 1), "/choose_candidate", "no comic yet"),
    ]
    for args, api_name, expected in cases:
        with pytest.raises(AppError) as info:
            client.predict(*args, api_name=api_name)
        message = str(info.value)
        assert expected.lower() in message.lower(), (api_name, message)
        assert "Traceback" not in message and "\n" not in message.strip()
    # consent: a warning and nothing queued
    status, job_id, remembered, *_ = client.predict(photo, "Ann Other", "she", False, 3, [],
                                                    api_name="/train")
    assert "Not started" in status and "likeness" in status
    assert job_id == "" and remembered == []
    # still working: the same session goes on to a comic
    client.predict("Hugh Jackman", api_name="/cast_add")
    parsed, _ = client.predict("Hugh Jackman ate an apple.", api_name="/parse")
    result = generate(client, rows_of(parsed), candidates_value=1)
    assert result[1].startswith("Done: 1 panel on 1 page")


def test_two_sessions_keep_separate_casts_and_stories(server, trained):
    a, b = client_for(server), client_for(server)
    assert "Hugh Jackman (he)" in a.predict("Hugh Jackman", api_name="/cast_add")[0]
    cast_b = b.predict("Taylor Swift", api_name="/cast_add")[0]
    assert "Taylor Swift (she)" in cast_b and "Hugh" not in cast_b
    story_a, _ = a.predict("Hugh Jackman read a book. He smiled.", api_name="/parse")
    story_b, _ = b.predict("Taylor Swift sang a song. She bowed.", api_name="/parse")
    assert rows_of(story_a) == [["Hugh Jackman read a book.", "Hugh Jackman", "", "", ""],
                                ["Hugh Jackman smiled.", "Hugh Jackman", "", "", ""]]
    assert rows_of(story_b)[1][0] == "Taylor Swift bowed."
    with pytest.raises(AppError, match="(?i)'Taylor Swift' is not in the cast \\(Hugh Jackman\\)"):
        generate(a, rows_of(story_b))
    with pytest.raises(AppError, match="(?i)'Hugh Jackman' is not in the cast \\(Taylor Swift\\)"):
        generate(b, rows_of(story_a))
    with pytest.raises(AppError, match="(?i)no comic yet"):
        b.predict(1, api_name="/candidates")
    generate(a, rows_of(story_a), candidates_value=1)
    assert len(a.predict(1, api_name="/candidates")[0]) == 1
    with pytest.raises(AppError, match="(?i)no comic yet"):
        b.predict(1, api_name="/candidates")
    with pytest.raises(AppError, match="(?i)'Taylor Swift' is not in the cast"):
        a.predict("Taylor Swift", api_name="/cast_remove")
    text, gallery, *_ = a.predict("hugh jackman", api_name="/cast_remove")
    assert "The cast is empty" in text and gallery == []
    with pytest.raises(AppError, match="(?i)Taylor Swift is already in the cast"):
        b.predict("Taylor Swift", api_name="/cast_add")  # b's cast is untouched


def test_people_outside_the_cast_are_named_before_anything_is_drawn(server, trained):
    client = client_for(server)
    client.predict("Hugh Jackman", api_name="/cast_add")
    story = ("Hugh Jackman met Taylor Swift and Marie Curie at the market. She laughed. "
             "The market was busy.")
    parsed, info = client.predict(story, api_name="/parse")
    rows = rows_of(parsed)
    assert "**Not in the cast:** Taylor Swift" in info and "Marie Curie" in info
    assert "**Nobody in panel 3:**" in info
    assert "Taylor Swift" in rows[0][1] and "Hugh Jackman" in rows[0][1]
    with pytest.raises(AppError, match="(?i)'Taylor Swift' is not in the cast"):
        generate(client, rows, candidates_value=1)
    # the sentence alone is refused too when it names a library identity outside the cast
    with pytest.raises(AppError, match="(?i)panel 1 names Taylor Swift, who is not in the cast"):
        generate(client, [["Hugh Jackman waved at Taylor Swift.", "Hugh Jackman", ""]],
                 candidates_value=1)
    # one click adds the library's Taylor Swift to the cast and parses again
    parsed, info, cast_text, *_ = client.predict(story, api_name="/story_add_cast")
    assert "Taylor Swift (she)" in cast_text and "**Not in the cast:**" not in info
    assert "Marie Curie" in info  # not in the library: still reported
