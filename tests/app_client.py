"""Helpers for the tests that drive a running app through ``gradio_client``."""

from __future__ import annotations

import time
from collections.abc import Callable

from gradio_client import Client


def wait_for_job(client: Client, job_id: str, timeout_s: float = 120.0, poll_s: float = 0.2,
                 until: Callable[[dict], bool] | None = None) -> dict:
    """Poll ``/job_status`` every ``poll_s`` seconds until ``until(job)`` (default: the job has
    finished) and return the job; fail the test after ``timeout_s`` seconds."""
    until = until or (lambda job: job["finished"])
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.predict(job_id, api_name="/job_status")
        if until(job):
            return job
        assert time.monotonic() < deadline, f"job {job_id} did not get there in {timeout_s:.0f} s: {job}"
        time.sleep(poll_s)
