"""Start ``python app.py --preset tiny`` as a real server for the app tests (flow and browser)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env() -> dict[str, str]:
    """The environment for the app: offline, no analytics, no Gemini key, localhost not proxied."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    for key in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "COMIC_PRESET", "COMIC_CONFIG"):
        env.pop(key, None)
    return env


@contextlib.contextmanager
def app_process(library: Path, log: Path, *extra: str,
                port: int | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """Serve the app on ``port`` (default: a free one) with the tiny preset and ``library``;
    yields the process (a test may kill it) and its URL; stops it at the end if it still runs.

    The server's output goes to ``log`` (appended; shown when it fails to start).
    """
    port = port or free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, str(ROOT / "app.py"), "--preset", "tiny", "--library", str(library),
               "--host", "127.0.0.1", "--port", str(port), *extra]
    with open(log, "ab") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=app_env(), stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"app.py exited with {process.returncode}:\n"
                                   f"{log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"app.py did not answer within {START_TIMEOUT_S:.0f} s:\n"
                                   f"{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield process, url
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


@contextlib.contextmanager
def running_app(library: Path, log: Path, *extra: str) -> Iterator[str]:
    """Serve the app on a free port with the tiny preset and ``library``; yields its URL.

    The server's output goes to ``log`` (shown when it fails to start).
    """
    with app_process(library, log, *extra) as (_process, url):
        yield url


def save_test_faces(folder: Path) -> dict[str, Path]:
    """The two real offline faces as PNG files: ``astronaut`` and ``grace_hopper``."""
    import numpy as np
    from matplotlib import cbook
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    astronaut = folder / "astronaut.png"
    Image.fromarray(data.astronaut()).save(astronaut)
    grace = folder / "grace_hopper.png"
    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        Image.fromarray(np.asarray(Image.open(handle).convert("RGB"))).save(grace)
    return {"astronaut": astronaut, "grace_hopper": grace}


SEED_STORY = (
    "Hugh Jackman was selecting an apple at a local grocery store when Taylor Swift, who dislikes "
    "apples, reached for a banana nearby. They struck up a conversation and discovered they were "
    "both headed to the same school. After paying for their purchases, they walked to school "
    "together, chatting amiably about their day.")
