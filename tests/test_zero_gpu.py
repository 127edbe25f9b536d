"""ZeroGPU: training inside ``spaces.GPU`` from the Train request, and every model call inside it.

The ZeroGPU test puts a stand-in ``spaces`` package (``tests/data/spaces_standin``) first on
``sys.path`` and sets ``SPACES_ZERO_GPU=true``; the stand-in pickles arguments and results as
ZeroGPU does and says whether a GPU function is running. A global torch forward hook and wrappers
around the face detector and the face-similarity model record, for every model call, whether it
ran inside.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from serving.jobs import JobProgress
from serving.gpu_speeds import default_speeds
from serving.zero_gpu import (GPUTimeError, StepSpeed, ZeroGPUTraining, drawing_duration_s, on_zero_gpu,
                                     stream_work, training_duration_s)

STANDIN = Path(__file__).resolve().parent / "data" / "spaces_standin"


# ----------------------------------------------------------------------------- library side


def test_zero_gpu_is_detected_as_spaces_does():
    assert on_zero_gpu({"SPACES_ZERO_GPU": "true"}) and on_zero_gpu({"SPACES_ZERO_GPU": "1"})
    assert on_zero_gpu({"SPACES_ZERO_GPU": "True"})
    assert not on_zero_gpu({}) and not on_zero_gpu({"SPACES_ZERO_GPU": "false"})
    assert not on_zero_gpu({"SPACES_ZERO_GPU": ""})


def test_durations_follow_steps_and_measured_speed():
    speeds = default_speeds()
    assert training_duration_s(0, 1.0) == speeds.min_call_s
    setup = speeds.train_setup_s.value
    assert training_duration_s(100, 0.5) == math.ceil((setup + 50.0) * speeds.margin)
    assert training_duration_s(200, 0.5) > training_duration_s(100, 0.5)
    assert training_duration_s(10_000, 0.5) == speeds.max_call_s   # never more than one call may ask
    speed = StepSpeed()
    assert speed.seconds_per_step() == speeds.seconds_per_step() and not speed.measured
    speed.record(JobProgress(step=0, total=10, elapsed_s=3.0))         # nothing to measure yet
    assert not speed.measured
    speed.record(JobProgress(step=100, total=100, elapsed_s=12.0))
    assert speed.measured and speed.seconds_per_step() == pytest.approx(0.12)
    assert drawing_duration_s(8, 2) > drawing_duration_s(1, 1) >= speeds.min_call_s
    assert drawing_duration_s(8, 2, face_pass=False) < drawing_duration_s(8, 2)


def test_stream_work_yields_progress_then_the_message_and_cancels_on_close():
    def work(report, cancel):
        for step in range(1, 4):
            report(JobProgress(step=step, total=3, elapsed_s=step * 0.01))
            time.sleep(0.02)
        return "saved"

    items = list(stream_work(work, poll_s=0.01))
    assert items[-1] == "saved" and items[-2] == JobProgress(step=3, total=3, elapsed_s=0.03)
    assert all(isinstance(i, JobProgress) for i in items[:-1])

    stopped = threading.Event()

    def endless(report, cancel):
        step = 0
        while not cancel.is_set():
            step += 1
            report(JobProgress(step=step, total=10 ** 9))
            time.sleep(0.005)
        stopped.set()
        return "cancelled"

    stream = stream_work(endless, poll_s=0.01)
    assert isinstance(next(stream), JobProgress)
    stream.close()                      # the request was cancelled
    assert stopped.is_set()

    def broken(report, cancel):
        raise ValueError("no face found")

    with pytest.raises(ValueError, match="no face found"):
        list(stream_work(broken, poll_s=0.01))


class _Service:
    """A training service whose work reports two steps (no models)."""

    def work(self, request):
        def run(report, cancel):
            report(JobProgress(step=1, total=2, elapsed_s=0.5))
            report(JobProgress(step=2, total=2, elapsed_s=1.0))
            return f"saved {request.name}"
        return run


class _Request:
    name, steps = "Ada Lovelace", 2


@pytest.mark.parametrize("title, text, expected", [
    ("ZeroGPU quota exceeded", "You have exceeded your free ZeroGPU quota (120s requested vs. 30s "
     "left). Try again in 0:12:00.", "could not get GPU time on this ZeroGPU Space (You have "
     "exceeded your free ZeroGPU quota (120s requested vs. 30s left). Try again in 0:12:00)"),
    ("ZeroGPU worker error", "GPU task aborted", "the 60 s of GPU time granted for it ran out"),
    ("ZeroGPU illegal duration", "The requested GPU duration (2000s) is larger than the maximum "
     "allowed", "could not get GPU time"),
])
def test_quota_and_abort_become_one_clear_line(title, text, expected):
    import gradio as gr

    def refusing(fn, duration):
        def run(request):
            raise gr.Error(text, title=title)
            yield  # pragma: no cover
        return run

    training = ZeroGPUTraining(_Service(), decorate=refusing)
    with pytest.raises(GPUTimeError) as info:
        list(training.run(_Request()))
    message = str(info.value)
    assert expected in message and "nothing was saved" in message and "\n" not in message
    assert not training.speed.measured

    def other(fn, duration):
        def run(request):
            raise RuntimeError("CUDA out of memory")
            yield  # pragma: no cover
        return run

    with pytest.raises(RuntimeError, match="out of memory"):
        list(ZeroGPUTraining(_Service(), decorate=other).run(_Request()))


def test_zero_gpu_training_measures_its_speed():
    seen = []

    def decorate(fn, duration):
        def run(request):
            seen.append(duration(request))
            yield from fn(request)
        return run

    training = ZeroGPUTraining(_Service(), decorate=decorate)
    items = list(training.run(_Request()))
    assert items[-1] == "saved Ada Lovelace" and seen == [training_duration_s(2)]
    assert training.speed.seconds_per_step() == pytest.approx(0.5)
    assert training.duration_s(_Request()) == training_duration_s(2, 0.5)


# ----------------------------------------------------------------------------- the app on ZeroGPU


@pytest.fixture()
def standin_spaces(monkeypatch):
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.syspath_prepend(str(STANDIN))
    monkeypatch.delitem(sys.modules, "spaces", raising=False)
    import spaces

    assert Path(spaces.__file__).parent.parent == STANDIN
    yield spaces
    sys.modules.pop("spaces", None)


class _Recorder:
    """Counts model calls inside and outside the GPU functions, by kind."""

    def __init__(self, spaces) -> None:
        self.spaces = spaces
        self.inside: dict[str, int] = {}
        self.outside: dict[str, int] = {}

    def note(self, kind: str) -> None:
        table = self.inside if self.spaces.inside() else self.outside
        table[kind] = table.get(kind, 0) + 1

    def wrap(self, kind: str, fn):
        def recorded(*args, **kwargs):
            self.note(kind)
            return fn(*args, **kwargs)
        return recorded


def _handler(demo, api_name: str):
    return next(f.fn for f in demo.fns.values() if f.api_name == api_name)


@pytest.mark.slow
def test_on_zero_gpu_every_model_call_runs_inside_spaces_gpu(standin_spaces, tiny_config, tiny_components,
                                                             astronaut, tmp_path, monkeypatch):
    from ui.app import build_demo
    from session import Session, Studio

    recorder = _Recorder(standin_spaces)
    hook = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: recorder.note(type(module).__name__))
    detector = tiny_components.face_detector
    monkeypatch.setattr(detector, "detect", recorder.wrap("face detector", detector.detect))
    studio = Studio(tiny_config.replace(library_dir=str(tmp_path / "library")), tiny_components,
                    examples_dir=tmp_path / "examples", export_root=tmp_path / "exports")
    try:
        assert studio.zero_gpu is not None
        recognizer = studio.similarity().recognizer      # the same detector, wrapped above
        monkeypatch.setattr(recognizer, "embed", recorder.wrap("face recogniser", recognizer.embed))
        demo = build_demo(studio)
        photo = tmp_path / "astronaut.png"
        Image.fromarray(astronaut).save(photo)

        # Train: streamed from the request, inside spaces.GPU, never on the background queue
        updates = list(_handler(demo, "train")(Session(), str(photo), "Ada Lovelace", "she", True, 2,
                                               []))
        assert [call for call in standin_spaces.CALLS if call[0] == "_train"] == \
            [("_train", training_duration_s(2))]
        assert "asking ZeroGPU for up to" in updates[0][0]
        assert any("Ada Lovelace: learning the face, " in u[0] and "% done" in u[0]
                   for u in updates)
        assert "Ada Lovelace is ready and in your library" in updates[-1][0]
        assert 'data-status="done"' in updates[-1][3]
        assert studio.queue.jobs() == [] and "Ada Lovelace" in studio.catalog
        assert studio.zero_gpu.speed.measured          # the next duration uses the measured speed

        # Generate (best of 2, scored) and redraw, through the page's handlers
        session = Session()
        studio.add_to_cast(session, "Ada Lovelace")
        s = studio.default_settings()
        settings = (s.style, list(s.keywords), s.negative_prompt, 3, False, 2, s.guidance, 64, 64, 2, "")
        rows = [["Ada Lovelace reads a book.", "Ada Lovelace", ""]]
        drawn = list(_handler(demo, "generate")(session, rows, *settings))
        session = drawn[-1][-1]
        assert session.comic is not None and len(session.comic.panels[0].results) == 2
        assert ("generate", drawing_duration_s(1, 2, steps=2, pixels=64 * 64)) in standin_spaces.CALLS
        list(_handler(demo, "redraw")(session, rows, 1, "5"))
    finally:
        hook.remove()
        studio.shutdown()

    assert recorder.outside == {}, f"model calls outside spaces.GPU: {recorder.outside}"
    for kind in ("UNet2DConditionModel", "Encoder", "Decoder", "CLIPTextModel", "CLIPTextModelWithProjection",
                 "ViTModel", "BiSeNet", "IdentityMLP", "face detector", "face recogniser"):
        assert recorder.inside.get(kind, 0) > 0, (kind, sorted(recorder.inside))


def test_without_zero_gpu_the_queue_trains(tiny_config, tiny_components, tmp_path, monkeypatch):
    from session import Studio

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    studio = Studio(tiny_config.replace(library_dir=str(tmp_path / "library")), tiny_components,
                    examples_dir=tmp_path / "examples", export_root=tmp_path / "exports")
    try:
        assert studio.zero_gpu is None
    finally:
        studio.shutdown()


def test_standin_pickles_like_zero_gpu(standin_spaces):
    @standin_spaces.GPU(duration=lambda xs: len(xs) * 10)
    def grow(xs):
        xs.append(1)
        return xs

    original = [0]
    assert grow(original) == [0, 1] and original == [0]     # the worker got a copy
    assert standin_spaces.CALLS[-1] == ("grow", 10)
    with pytest.raises(Exception):
        grow([threading.Lock()])                             # unpicklable arguments fail, as there
