"""The training queue (one job at a time, positions, cancel, failures) and the safety filter."""

from __future__ import annotations

import threading

import pytest

from pipelines.safety import SafetyFilter, UnsafePrompt
from serving.jobs import JobProgress, TrainingQueue


def _blocking_work(started: threading.Event, release: threading.Event, steps: int = 3):
    def work(report, cancel):
        started.set()
        for step in range(1, steps + 1):
            report(JobProgress(step=step, total=steps, loss=1.0 / step, eta_s=float(steps - step)))
            if not release.wait(5) or cancel.is_set():
                raise RuntimeError("stopped")
        return "trained"
    return work


def test_jobs_run_one_at_a_time_in_order_with_positions():
    queue = TrainingQueue()
    started_a, release_a = threading.Event(), threading.Event()
    a = queue.submit("Ada Lovelace", _blocking_work(started_a, release_a))
    assert started_a.wait(5)
    b = queue.submit("Alan Turing", lambda report, cancel: "ok b")
    c = queue.submit("Grace Hopper", lambda report, cancel: "ok c")
    assert queue.get(a.id).status == "running" and queue.get(a.id).position == 0
    assert queue.get(b.id).position == 1 and queue.get(c.id).position == 2
    assert "2 job(s) ahead" in queue.get(c.id).describe()
    release_a.set()
    done = queue.wait(c.id, timeout_s=10)
    assert done.status == "done" and done.message == "ok c" and done.position is None
    view_a = queue.get(a.id)
    assert view_a.status == "done" and view_a.message == "trained"
    assert view_a.progress.step == 3 and view_a.fraction == 1.0
    assert [j.label for j in queue.jobs()] == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    queue.shutdown()


def test_cancel_running_and_queued_jobs_and_failures_do_not_stop_the_queue():
    errors: list[str] = []
    queue = TrainingQueue(on_error=errors.append)
    started, release = threading.Event(), threading.Event()
    running = queue.submit("A B", _blocking_work(started, release))
    assert started.wait(5)
    waiting = queue.submit("C D", lambda report, cancel: "never")
    assert queue.cancel(waiting.id)
    assert queue.get(waiting.id).status == "cancelled"
    assert queue.cancel(running.id)
    release.set()
    assert queue.wait(running.id, 10).status == "cancelled"

    def broken(report, cancel):
        raise ValueError("no face found in the photo\nsecond line")

    failed = queue.wait(queue.submit("E F", broken).id, 10)
    assert failed.status == "failed" and failed.message == "no face found in the photo"
    assert errors and "ValueError" in errors[0]
    after = queue.wait(queue.submit("G H", lambda report, cancel: "fine").id, 10)
    assert after.status == "done"
    assert not queue.cancel(after.id) and queue.get("nope") is None
    queue.shutdown()


def test_safety_filter_refuses_explicit_terms_as_whole_words():
    safety = SafetyFilter.from_file()
    assert safety.find("Ada Lovelace is NAKED on the beach, undressing") == ["naked", "undressing"]
    assert safety.find("Ada walked past Essex and a stripe-free sexton") == []
    with pytest.raises(UnsafePrompt, match="story contains refused terms \\(nude\\)"):
        safety.check("a nude portrait of Ada", what="story")
    safety.check("Ada Lovelace reads a book", what="story")
    assert SafetyFilter(()).find("naked") == []
