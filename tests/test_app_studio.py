"""The app's session logic in-process: panel table, identity catalog, training service, studio."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.panel_table import (PanelTableError, add_row, move_row, normalise_rows,
                                   panels_from_rows, remove_row, rows_from_panels, set_seed,
                                   split_characters)
from pipelines.project import PanelSpec
from identities.catalog import IdentityCatalog, ReadOnlyIdentity
from serving.jobs import JobProgress, JobView
from identities.library import IdentityExists, IdentityLibrary, IdentityNotFound
from identities.names import InvalidName, InvalidPronouns
from serving.training_service import (TrainingInputError, job_dict, job_line,
                                             progress_html)

# ----------------------------------------------------------------------------- panel table


def test_rows_round_trip_and_blank_rows_are_skipped():
    panels = (PanelSpec("Ada Lovelace reads.", ("Ada Lovelace",)),
              PanelSpec("Ada Lovelace and Alan Turing talk.", ("Ada Lovelace", "Alan Turing"), 7))
    rows = rows_from_panels(panels)
    assert rows == [["Ada Lovelace reads.", "Ada Lovelace", "", "", ""],
                    ["Ada Lovelace and Alan Turing talk.", "Ada Lovelace, Alan Turing", "7", "", ""]]
    assert panels_from_rows(rows + [["", "", "", "", ""]]) == panels
    assert panels_from_rows({"headers": ["Text"], "data": rows}) == panels
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame([["A cat.", None, float("nan")], ["A dog.", "", 3.0]])
    assert normalise_rows(frame) == [["A cat.", "", "", "", ""], ["A dog.", "", "3", "", ""]]
    assert normalise_rows([["only text"]]) == [["only text", "", "", "", ""]]
    assert split_characters(" Ada  Lovelace ; ada lovelace, Alan Turing,") == ("Ada Lovelace", "Alan Turing")


@pytest.mark.parametrize("rows, message", [
    ([["", "Ada Lovelace", ""]], "row 1: the panel text is empty"),
    ([["A.", "", "x1"]], "row 1: the seed 'x1' is not a whole number"),
    ([["A.", "", ""], ["B.", "", "-4"]], "row 2: the seed must not be negative"),
])
def test_bad_rows_name_the_row(rows, message):
    with pytest.raises(PanelTableError, match=message):
        panels_from_rows(rows)


def test_row_controls():
    rows = [["1.", "", "", "", ""], ["2.", "", "", "", ""], ["3.", "", "", "", ""]]
    assert [r[0] for r in add_row(rows, None)] == ["1.", "2.", "3.", ""]
    assert [r[0] for r in add_row(rows, 3)] == ["1.", "2.", "3.", ""]
    assert [r[0] for r in add_row([], 0)] == [""]
    assert [r[0] for r in remove_row(rows, 1)] == ["2.", "3."]
    assert move_row(rows, 1, -1) == (rows, 1)  # clamped at the top
    assert move_row(rows, 2, +1) == ([["1.", "", "", "", ""], ["3.", "", "", "", ""],
                                      ["2.", "", "", "", ""]], 3)
    assert set_seed(rows, 2, 42)[1] == ["2.", "", "42", "", ""]
    with pytest.raises(PanelTableError, match="row 4 does not exist; the table has rows 1 to 3"):
        remove_row(rows, 4)
    with pytest.raises(PanelTableError, match="the panel list is empty"):
        move_row([], 1, 1)
    with pytest.raises(PanelTableError, match="give the number of the row"):
        remove_row(rows, "two")


# ----------------------------------------------------------------------------- catalog


def _identity(library: IdentityLibrary, name: str, pronouns: str = "", width=(32, 64)) -> None:
    library.add(name, torch.randn(2, width[0]), torch.randn(2, width[1]), pronouns=pronouns,
                face=np.full((64, 64, 3), 128, np.uint8))


def test_catalog_lists_the_library_then_read_only_examples(tmp_path):
    mine, shipped = IdentityLibrary(tmp_path / "mine"), IdentityLibrary(tmp_path / "examples")
    _identity(mine, "Ada Lovelace", "she")
    _identity(shipped, "Alan Turing", "he")
    _identity(shipped, "ada lovelace", "they")  # the user's own wins
    catalog = IdentityCatalog(mine, tmp_path / "examples")
    entries = catalog.entries()
    assert [(e.name, e.source) for e in entries] == [("Ada Lovelace", "library"),
                                                    ("Alan Turing", "example")]
    assert [e.caption() for e in entries] == ["Ada Lovelace (she)", "Alan Turing (he) · example"]
    assert catalog.get("alan turing").pronouns == "he" and "Alan Turing" in catalog
    with pytest.raises(ReadOnlyIdentity, match="shipped example"):
        catalog.delete("Alan Turing")
    with pytest.raises(IdentityNotFound, match="no identity named 'Grace Hopper'.*known: Ada"):
        catalog.get("Grace Hopper")
    catalog.delete("Ada Lovelace")
    assert catalog.names() == ["ada lovelace", "Alan Turing"]  # now the example shows
    assert IdentityCatalog(mine, tmp_path / "missing").names() == []


# ----------------------------------------------------------------------------- studio


@pytest.fixture()
def photo(tmp_path, astronaut):
    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    return str(path)


def test_training_checks_everything_before_queueing(studio, photo, tmp_path):
    service = studio.training
    with pytest.raises(TrainingInputError, match="likeness"):
        service.check(photo, "Ada Lovelace", "she", consent=False)
    with pytest.raises(TrainingInputError, match="upload a photo"):
        service.check(None, "Ada Lovelace", "she", consent=True)
    with pytest.raises(InvalidName, match="empty"):
        service.check(photo, "  ", "she", consent=True)
    with pytest.raises(InvalidPronouns, match="unknown pronouns 'xe'"):
        service.check(photo, "Ada Lovelace", "xe", consent=True)
    with pytest.raises(TrainingInputError, match="between 1 and 5000"):
        service.check(photo, "Ada Lovelace", "she", consent=True, steps=0)
    request = service.check(photo, "Ada  Lovelace", "She/Her", consent=True, steps=None)
    assert (request.name, request.pronouns, request.steps) == ("Ada Lovelace", "she",
                                                               studio.config.train.steps)
    assert request.photo[:8] == b"\x89PNG\r\n\x1a\n"

    # a long job: the same name is busy meanwhile; cancelling stores nothing
    view = service.submit(service.check(photo, "Ada Lovelace", "she", consent=True, steps=400))
    with pytest.raises(TrainingInputError, match="already being trained"):
        service.check(photo, "ada lovelace", "she", consent=True, steps=3)
    assert service.cancel(view.id)
    finished = studio.queue.wait(view.id, timeout_s=60)
    assert finished.status == "cancelled" and "Ada Lovelace" not in studio.catalog
    assert not service.cancel(view.id)

    done = studio.queue.wait(service.submit(service.check(photo, "Ada Lovelace", "she", True, 2)).id, 60)
    assert done.status == "done", done.message
    with pytest.raises(IdentityExists):
        service.check(photo, "ADA LOVELACE", "she", consent=True)
    assert service.views(["nope", view.id, done.id]) == [studio.queue.get(view.id), done]


def test_job_lines_and_progress_bars():
    def view(status, step=0, position=None, label="Training <Ada>"):
        return JobView(id="abc", label=label, status=status, progress=JobProgress(step, 10, 0.5, 1.0, 9.0),
                       message="boom" if status == "failed" else "", position=position, created=1.0)
    assert job_line(view("queued", position=0)) == "<Ada>: starting …"
    assert job_line(view("queued", position=2)) == "<Ada>: queued, 3rd in line (2 trainings ahead)"
    assert job_line(view("running", 0, 0)) == "<Ada>: preparing the photo …"
    line = job_line(view("running", 3, 0))
    assert line == "<Ada>: learning the face, 30% done, about 9 s left" and "loss" not in line
    assert job_line(view("done")) == "<Ada> is ready and in your library"
    assert job_line(view("failed")) == "<Ada>: training failed: boom"
    running = view("running", 3, 0)
    html = progress_html([running, view("failed")])
    assert "&lt;Ada&gt;" in html and "<Ada>" not in html
    assert 'data-status="running"' in html and "width:30%" in html and "#c62828" in html
    assert job_dict(running)["eta_s"] == 9.0
    assert "No training yet" in progress_html([])


def test_sessions_are_separate_and_the_cast_is_checked(studio, tiny_components):
    from session import Session, StudioError

    library = studio.catalog.library
    width = (tiny_components.text_encoder.get_input_embeddings().embedding_dim,
             tiny_components.text_encoder_2.get_input_embeddings().embedding_dim)
    _identity(library, "Ada Lovelace", "she", width)
    _identity(library, "Alan Turing", "he", width)
    _identity(library, "Wrong Model", "he", (768, 1280))
    a, b = Session(), Session()
    assert studio.add_to_cast(a, "ada lovelace") == "Ada Lovelace"
    studio.add_to_cast(b, "Alan Turing")
    assert a.cast == ["Ada Lovelace"] and b.cast == ["Alan Turing"]
    with pytest.raises(StudioError, match="already in the cast"):
        studio.add_to_cast(a, "Ada Lovelace")
    with pytest.raises(StudioError, match="learned for another base model"):
        studio.add_to_cast(a, "Wrong Model")
    assert studio.cast_characters(a) == [("Ada Lovelace", "she")]
    assert "Ada Lovelace (she)" in studio.cast_text(a) and "empty" in studio.cast_text(Session())
    # deleting needs two steps and drops the identity from the asking session's cast
    with pytest.raises(StudioError, match="nothing to delete"):
        studio.confirm_delete(a)
    assert "Delete **Ada Lovelace**" in studio.request_delete(a, "Ada Lovelace")
    studio.cancel_delete(a)
    with pytest.raises(StudioError, match="nothing to delete"):
        studio.confirm_delete(a)
    studio.request_delete(a, "Ada Lovelace")
    assert studio.confirm_delete(a) == "Ada Lovelace"
    assert a.cast == [] and "Ada Lovelace" not in studio.catalog
    # download folders differ although gr.State deep-copies one initial Session
    import copy

    template = Session()
    one, two = copy.deepcopy(template), copy.deepcopy(template)
    assert studio.session_folder(one) != studio.session_folder(two)


def test_settings_are_checked(studio):
    from session import StudioError

    good = studio.settings_from("comic book", ["vivid colors"], "", 3, False, 4, 7.5, 64, 64, 2, " T ")
    assert (good.seed, good.candidates, good.title, good.face_pass) == (3, 2, "T", True)
    off = studio.settings_from("comic book", [], "", 3, False, 4, 7.5, 64, 64, 1, "", False)
    assert off.face_pass is False and studio.default_settings().face_pass is True
    for args, message in [((None, [], "", -1, False, 4, 7.5, 64, 64, 1, ""), "seed"),
                          ((None, [], "", 0, False, 4, "x", 64, 64, 1, ""), "guidance"),
                          ((None, [], "", 0, False, 4.5, 7.5, 64, 64, 1, ""), "steps"),
                          ((None, [], "", 0, False, 4, 7.5, 64, 64, 99, ""), "candidates")]:
        with pytest.raises(StudioError, match=message):
            studio.settings_from(*args)


def test_models_that_fail_to_load_leave_a_working_page_with_the_error(tiny_config, tmp_path,
                                                                    monkeypatch, capsys):
    from ui.app import build_demo
    from session import ModelsUnavailable, Studio, user_message

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("COMIC_CACHE", str(tmp_path))
    from configs import load_config

    config = load_config("sdxl").replace(library_dir=str(tmp_path / "library"))
    studio = Studio.create(config, export_root=tmp_path / "exports")
    try:
        assert "not in the Hugging Face cache" in capsys.readouterr().err
        assert studio.load_error and "stable-diffusion-xl" in studio.load_error
        with pytest.raises(ModelsUnavailable, match="could not be loaded"):
            studio.generator()
        with pytest.raises(ModelsUnavailable, match="could not be loaded"):
            studio.training.check(b"photo", "Ada Lovelace", "she", consent=True)
        demo = build_demo(studio)  # the page still builds, showing the error
        texts = [c.get("props", {}).get("value") for c in demo.get_config_file()["components"]]
        assert any(isinstance(t, str) and "The models could not be loaded" in t for t in texts)
        assert "could not be loaded" in user_message(ModelsUnavailable("the models could not be loaded"))
    finally:
        studio.shutdown()


def test_unexpected_errors_become_one_line_and_handlers_are_guarded(caplog):
    import gradio as gr

    import inspect

    from ui import wiring
    from session import user_message

    text = user_message(RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB"))
    assert text.startswith("Something went wrong (RuntimeError: CUDA out of memory. Tried")
    assert "\n" not in text and "server log" in text
    assert "unexpected error" in caplog.text

    def boom(x):
        raise PanelTableError("row 2 does not exist")

    def stream(x):
        yield 1
        raise KeyError("k")

    with pytest.raises(gr.Error, match="Row 2 does not exist"):
        wiring.guarded(boom)(1)
    guarded = wiring.guarded(stream)
    assert inspect.isgeneratorfunction(guarded)
    with pytest.raises(gr.Error, match="Something went wrong \\(KeyError"):
        list(guarded(1))


def test_gpu_functions_use_spaces_when_it_is_installed(monkeypatch):
    from ui.wiring import gpu

    def plain():
        return 1

    assert gpu(plain) is plain
    fake = types.ModuleType("spaces")
    fake.GPU = lambda fn: ("on gpu", fn)
    monkeypatch.setitem(sys.modules, "spaces", fake)
    assert gpu(plain) == ("on gpu", plain)


class _CountingDetector:
    """A detector stand-in that records how often it is asked (returns one fixed face)."""

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image):
        from faces.face_detection import DetectedFace

        self.calls += 1
        return [DetectedFace(box=(1.0, 2.0, 30.4, 40.6), score=1.0,
                             landmarks=np.zeros((5, 2), np.float32))]


def test_speech_bubble_faces_come_from_the_score_or_one_detection_per_candidate():
    from types import SimpleNamespace

    from pipelines.layout import Box
    from session import DrawnPanel
    from faces.similarity import PanelScore

    image = Image.new("RGB", (64, 64))
    results = [SimpleNamespace(image=image), SimpleNamespace(image=image)]
    scored = PanelScore(characters=(), faces_found=1, face_boxes=((5.0, 6.0, 20.6, 30.2),))
    panel = DrawnPanel(text="Ada reads.", results=results, scores=[scored, None])
    detector = _CountingDetector()
    assert panel.chosen_faces(detector) == [Box(5, 6, 21, 30)]
    assert detector.calls == 0  # the scored candidate was not detected again
    panel.chosen = 1
    assert panel.chosen_faces(detector) == [Box(1, 2, 30, 41)]
    assert panel.chosen_faces(detector) == [Box(1, 2, 30, 41)]
    assert detector.calls == 1  # an unscored candidate is detected once, then remembered


# ----------------------------------------------------------------------------- issue 12


def test_people_outside_the_cast_are_found_and_places_are_not():
    from llm.people import find_outsiders

    found = find_outsiders("Eileen Collins met Marie Curie and Grace Hopper in New York. After "
                           "lunch they walked to Central Park with Alan M. Turing. The Two smiled.",
                           ["Eileen Collins"], ["Grace Hopper", "Ada Lovelace", "eileen collins"])
    assert found.known == ("Grace Hopper",)  # a library identity: certain
    assert found.unknown == ("Marie Curie", "Alan M. Turing")  # looks like a person
    assert find_outsiders("Eileen Collins waved.", ["Eileen Collins"], ["Grace Hopper"]).all == ()


def test_errors_stay_in_the_step_for_a_browser_and_raise_for_an_api_caller():
    import gradio as gr

    from ui.wiring import on

    registered = {}

    def trigger(fn, **kwargs):
        registered.update(fn=fn, **kwargs)

    def handler(rows, number):
        raise PanelTableError(f"row {number} does not exist")

    with gr.Blocks():
        table, line, other = gr.Markdown(), gr.Markdown(), gr.Number()
    on(trigger, handler, inputs=[table, other], outputs=[table], line=line)
    assert registered["outputs"] == [table, line]  # the step's line is appended
    skip, message = registered["fn"]("rows", 9, None)  # a browser: nothing else changes
    assert skip == gr.skip() and message.startswith("⚠️") and "Row 9 does not exist" in message
    api = types.SimpleNamespace(headers={"x-gradio-user": "api"})
    with pytest.raises(gr.Error, match="Row 9 does not exist"):
        registered["fn"]("rows", 9, api)
    on(trigger, lambda rows, number: rows, inputs=[table, other], outputs=[table], line=line)
    assert registered["fn"]("rows", 1, None) == ("rows", "")  # success clears the line


def test_uploads_are_checked_with_one_plain_reason(studio, photo, tmp_path):
    from faces.face_prep import FacePrepError
    from serving.training_service import PRONOUNS_MESSAGE

    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    heic = tmp_path / "phone.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    blank = tmp_path / "blank.png"
    Image.new("RGB", (256, 256), (128, 128, 128)).save(blank)
    for path, reason in [(text, "not a readable image"), (heic, "HEIC images are not supported"),
                         (blank, "no face found")]:
        with pytest.raises(FacePrepError, match=reason):
            studio.training.check_photo(str(path))
    raw, aligned = studio.training.check_photo(photo)
    assert raw[:4] == b"\x89PNG" and aligned.image.shape[2] == 3
    twice = tmp_path / "two_people.png"  # the same face twice, side by side: whose is it?
    face = Image.open(photo)
    pair = Image.new("RGB", (face.width * 2, face.height))
    pair.paste(face, (0, 0))
    pair.paste(face, (face.width, 0))
    pair.save(twice)
    with pytest.raises(FacePrepError, match=r"the photo shows [2-9] faces; upload \(or crop to\)"):
        studio.training.check_photo(str(twice))
    with pytest.raises(TrainingInputError, match="choose the person's pronouns"):
        studio.training.check(photo, "Agent 47", None, consent=True)
    assert PRONOUNS_MESSAGE.startswith("choose")
    assert studio.training.check(photo, "Agent 47", "he", consent=True, steps=2).name == "Agent 47"


def test_parse_names_library_identities_outside_the_cast(studio, tiny_components):
    from pipelines.project import UnknownCharacter
    from session import Session

    for name, pronouns in (("Eileen Collins", "she"), ("Grace Hopper", "she")):
        _identity(studio.catalog.library, name, pronouns,
                  (tiny_components.text_encoder.get_input_embeddings().embedding_dim,
                   tiny_components.text_encoder_2.get_input_embeddings().embedding_dim))
    session = Session()
    studio.add_to_cast(session, "Eileen Collins")
    outcome = studio.parse(session, "Eileen Collins met Grace Hopper and Marie Curie. She laughed. "
                                    "The room was quiet.")
    assert outcome.addable == ("Grace Hopper",)
    assert "**Not in the cast:** Grace Hopper" in outcome.info and "Marie Curie" in outcome.info
    assert "**Nobody in panel 3:**" in outcome.info
    # "She" could be any of the three women now, not only the cast's: the parser says so
    assert any("'She' is ambiguous" in w for w in outcome.warnings)
    with pytest.raises(UnknownCharacter, match="'Grace Hopper' is not in the cast"):
        studio.build_request(session, outcome.rows[:1], studio.default_settings())
    with pytest.raises(UnknownCharacter, match="panel 1 names Grace Hopper, who is not in the cast"):
        studio.build_request(session, [["Eileen Collins hugged Grace Hopper.", "Eileen Collins", ""]],
                             studio.default_settings())
