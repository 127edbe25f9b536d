"""``python -m llm parse`` run as a subprocess: exit codes, text and JSON output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STORY = (
    "Hugh Jackman was selecting an apple at a local grocery store when Taylor Swift, who "
    "dislikes apples, reached for a banana nearby. They struck up a conversation and discovered "
    "they were both headed to the same school. After paying for their purchases, they walked to "
    "school together, chatting amiably about their day."
)
CHARACTER_ARGS = ["--character", "Hugh Jackman:he", "--character", "Taylor Swift:she"]


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"GEMINI_API_KEY", "GOOGLE_API_KEY"}}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "llm", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


@pytest.fixture()
def story_file(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text(STORY, encoding="utf-8")
    return path


def test_json_output_is_exactly_the_panel_list(story_file):
    proc = run_cli("parse", "--story-file", str(story_file), *CHARACTER_ARGS, "--json", "--preset", "tiny")
    assert proc.returncode == 0, proc.stderr
    panels = json.loads(proc.stdout)
    assert isinstance(panels, list) and len(panels) == 3
    for panel in panels:
        assert set(panel) == {"text", "characters"}
        assert isinstance(panel["text"], str) and isinstance(panel["characters"], list)
    assert panels[2]["text"].startswith("Hugh Jackman and Taylor Swift walked to school together")
    assert "parsed by the offline parser (no GEMINI_API_KEY or GOOGLE_API_KEY set)" in proc.stderr


def test_text_output_is_numbered_with_the_parser_line(story_file):
    proc = run_cli("parse", "--story-file", str(story_file), *CHARACTER_ARGS, "--offline")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("1. Hugh Jackman was selecting an apple")
    assert lines[0].endswith("[Hugh Jackman, Taylor Swift]")
    assert lines[1].startswith("2. ") and lines[2].startswith("3. ")
    assert lines[3] == "(parsed by the offline parser)"


def test_story_from_stdin_and_warnings_on_stderr():
    proc = run_cli(
        "parse",
        "--story-file",
        "-",
        "--character",
        "Hugh Jackman:he",
        "--character",
        "Tom Hardy:he",
        "--json",
        "--offline",
        stdin="Hugh Jackman waved. He smiled.",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [
        {"text": "Hugh Jackman waved.", "characters": ["Hugh Jackman"]},
        {"text": "Hugh Jackman smiled.", "characters": ["Hugh Jackman"]},
    ]
    assert "warning: Tom Hardy never occurs in the story" in proc.stderr


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (
            ["parse", "--story-file", "/nonexistent/story.txt", "--character", "Hugh Jackman"],
            None,
            "story file not found",
        ),
        (["parse", "--story-file", "-", "--character", "Hugh Jackman"], "   ", "the story is empty"),
        (["parse", "--story-file", "-"], "Hugh Jackman waved.", "no characters given"),
        (["parse", "--story-file", "-", "--character", "99"], "Hugh waved.", "bad character name"),
        (["parse", "--story-file", "-", "--character", "Hugh Jackman:xe"], "Hugh waved.", "unknown pronoun"),
        (["parse", "--character", "Hugh Jackman"], None, "--story-file"),
        (
            ["parse", "--story-file", "-", "--character", "Hugh Jackman", "--preset", "nope"],
            "Hugh waved.",
            "unknown preset",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(args, stdin, message):
    proc = run_cli(*args, stdin=stdin)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_main_in_process(tmp_path):
    import io

    from llm.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["parse", "--story-file", "-", "--character", "Alex Kim:they/them", "--offline"],
        stdin=io.StringIO("Alex Kim ran. They were late."),
        stdout=out,
        stderr=err,
    )
    assert code == 0
    assert out.getvalue().splitlines()[1] == "2. Alex Kim was late.  [Alex Kim]"
