"""Many requests at once on one set of models (core/concurrency.py, docs/APP.md).

* every shared face object survives 8 threads at once and answers as it does alone (in a
  subprocess: before the locks, dlib aborted the whole process);
* the device gate is fair and re-entrant, panels and training steps take turns on it, a panel
  waits for one training step (not the whole run), and ``runtime.overlap_training`` lifts it.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.generation import PanelGenerator
from pipelines.project import ComicRequest, PanelSpec
from core.concurrency import DeviceGate, FairRLock, overlap_allowed
from faces.face_detection import DlibFaceDetector
from faces.face_prep import prepare_face
from stableidentity.masks import face_masks
from stableidentity.trainer import StableIdentityTrainer

HAMMER = Path(__file__).with_name("concurrency_hammer.py")
HAMMER_TIMEOUT_S = 300
HAMMERED = 7  # objects (and the mixed round) the hammer reports


def test_every_shared_face_object_survives_eight_threads():
    run = subprocess.run([sys.executable, str(HAMMER)], capture_output=True, text=True,
                         timeout=HAMMER_TIMEOUT_S, cwd=HAMMER.parents[1])
    lines = run.stdout.splitlines()
    started = [line for line in lines if line.startswith("start ")]
    assert run.returncode == 0, (
        f"hammer exited with {run.returncode}"
        f"{' (killed by signal %d)' % -run.returncode if run.returncode < 0 else ''} during "
        f"'{started[-1][6:] if started else '?'}':\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    assert sum(line.startswith("ok ") for line in lines) == HAMMERED, run.stdout
    assert not [line for line in lines if line.startswith("FAIL")]


# ----------------------------------------------------------------------------- the fair lock


def _queue_up(lock: FairRLock, count: int, order: list[int]) -> list[threading.Thread]:
    """Start ``count`` threads that each take ``lock`` once, one after another in line."""
    threads = []
    for k in range(count):
        def take(k: int = k) -> None:
            with lock:
                order.append(k)
        thread = threading.Thread(target=take)
        thread.start()
        deadline = time.monotonic() + 10
        while lock.waiting() < k + 1:  # thread k holds its ticket before k + 1 starts
            assert time.monotonic() < deadline
            time.sleep(0.001)
        threads.append(thread)
    return threads


def test_fair_lock_serves_waiters_in_arrival_order_and_is_reentrant():
    lock = FairRLock()
    order: list[int] = []
    with lock:
        with lock:  # re-entrant: the owner takes it again
            assert lock.held_by_me()
        threads = _queue_up(lock, 6, order)
        assert order == []
    for thread in threads:
        thread.join(10)
    assert order == list(range(6))
    assert not lock.held_by_me() and lock.waiting() == 0


def test_fair_lock_refuses_a_release_by_another_thread():
    lock = FairRLock()
    lock.acquire()
    errors: list[Exception] = []

    def release() -> None:
        try:
            lock.release()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=release)
    thread.start()
    thread.join(10)
    assert errors and lock.held_by_me()
    lock.release()


def test_a_busy_loop_cannot_starve_a_waiter():
    """A thread re-taking the lock in a tight loop (a training run) lets a waiter in next:
    if the loop saw the waiter queued during its turn t, the waiter gets the lock right after t."""
    lock, stop = FairRLock(), threading.Event()
    turns, seen_waiting = [0], []

    def busy() -> None:
        while not stop.is_set():
            with lock:
                turns[0] += 1
                if lock.waiting() and not seen_waiting:
                    seen_waiting.append(turns[0])
                time.sleep(0.002)

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while turns[0] < 5:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        with lock:
            got = turns[0]
    finally:
        stop.set()
        thread.join(10)
    assert seen_waiting in ([], [got]), (seen_waiting, got)


# ----------------------------------------------------------------------------- the device gate


def with_runtime(components, **runtime):
    config = components.config
    return dataclasses.replace(
        components, config=config.replace(runtime=dataclasses.replace(config.runtime, **runtime)))


def test_components_own_one_gate_that_copies_share(tiny_components):
    assert isinstance(tiny_components.gate, DeviceGate)
    assert tiny_components.gate.device == str(tiny_components.device)
    assert with_runtime(tiny_components, overlap_training=True).gate is tiny_components.gate


def test_overlap_switch_and_cpu_offload(tiny_config):
    runtime = tiny_config.runtime
    assert not overlap_allowed(runtime)  # the default: take turns
    assert overlap_allowed(dataclasses.replace(runtime, overlap_training=True))
    assert not overlap_allowed(dataclasses.replace(runtime, overlap_training=True, cpu_offload=True))


@pytest.fixture(scope="module")
def trainer_inputs(astronaut):
    aligned = prepare_face(astronaut, DlibFaceDetector())
    return aligned, face_masks(None, aligned.image, aligned.landmarks)


def _trains_while_gate_held(components, trainer_inputs, wait_s: float) -> bool:
    """Whether a 2-step training run finishes within ``wait_s`` while this thread holds the gate."""
    aligned, masks = trainer_inputs
    trainer = StableIdentityTrainer(components, aligned, seed=0, masks=masks)
    done = []
    thread = threading.Thread(target=lambda: done.append(trainer.run(2)))
    with components.gate.work():
        thread.start()
        thread.join(wait_s)
        finished = not thread.is_alive()
    thread.join(60)
    assert done and len(done[0]) == 2  # it always finishes once the gate is free
    return finished


def test_training_steps_wait_for_the_gate_unless_overlap_is_on(tiny_components, trainer_inputs):
    assert not _trains_while_gate_held(tiny_components, trainer_inputs, wait_s=0.5)
    overlapping = with_runtime(tiny_components, overlap_training=True)
    assert _trains_while_gate_held(overlapping, trainer_inputs, wait_s=60)


def test_panels_and_training_steps_take_turns(tiny_components, trainer_inputs):
    """A panel drawn during a training run waits for one step, not the run, and its pixels and
    the trained vectors equal what each gives alone."""
    aligned, masks = trainer_inputs
    generator = PanelGenerator(tiny_components)
    request, prepared = generator.prepare(ComicRequest(panels=(PanelSpec("a lighthouse at night"),),
                                                       seed=3, steps=2, candidates=2))
    alone = [np.asarray(r.image) for r in generator.draw(request, prepared[0])]
    steps = 30
    reference = StableIdentityTrainer(tiny_components, aligned, seed=0, masks=masks)
    reference.run(steps)
    expected_vectors = reference.final_embeddings()

    trainer = StableIdentityTrainer(tiny_components, aligned, seed=0, masks=masks)
    progress: list[int] = []
    thread = threading.Thread(target=lambda: trainer.run(steps, progress=lambda p: progress.append(p.step)))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(progress) < 2:
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.001)
        drawn = [np.asarray(r.image) for r in generator.draw(request, prepared[0])]
        at_draw_end = len(progress)
    finally:
        thread.join(60)
    assert at_draw_end < steps, "the panel waited for the whole training run"
    assert all(np.array_equal(a, b) for a, b in zip(alone, drawn)) and len(drawn) == 2
    for got, want in zip(trainer.final_embeddings(), expected_vectors):
        assert torch.equal(got, want)


# ----------------------------------------------------------------------------- gradio's side


def test_gradio_bounds_every_event_and_groups_the_model_events(tiny_config, tiny_components, tmp_path):
    from ui.app import build_demo
    from session import Studio
    from ui.wiring import OTHER_EVENTS

    config = tiny_config.replace(library_dir=str(tmp_path / "library"))
    studio = Studio(config, tiny_components, examples_dir=tmp_path / "examples",
                    export_root=tmp_path / "downloads")
    try:
        demo = build_demo(studio)
        groups = {fn.api_name: (fn.concurrency_id, fn.concurrency_limit)
                  for fn in demo.fns.values() if fn.api_name and fn.api_visibility != "private"}
        # the panel cards' own candidate strips and Redraw buttons (not in the API)
        cards = {fn.concurrency_id: fn.concurrency_limit for fn in demo.fns.values()
                 if fn.api_visibility == "private" and fn.concurrency_limit != "default"}
        default_limit = demo._queue.default_concurrency_limit
    finally:
        studio.shutdown()
    assert groups.pop("generate") == groups.pop("redraw") == ("gpu", 2)
    assert groups.pop("train") == groups.pop("choose_candidate") == ("faces", 4)
    assert groups.pop("check_photo") == groups.pop("open_project") == ("faces", 4)
    assert groups.pop("train_again") == ("faces", 4)  # re-queues a job: checks its photo
    assert groups.pop("parse") == groups.pop("story_add_cast") == ("parse", 4)
    assert cards == {"gpu": 2, "faces": 4}
    # every other event touches no model and is bounded by the queue's default
    assert default_limit == OTHER_EVENTS
    assert {limit for _group, limit in groups.values()} == {"default"}
    assert "job_status" in groups and "library" in groups
