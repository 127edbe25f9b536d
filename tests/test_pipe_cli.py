"""``python -m pipelines generate``: the files it writes and its one-line errors (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.cli import main

ROOT = Path(__file__).resolve().parent.parent
PANELS = [
    {"text": "Ada Lovelace and Alan Turing walked to school.", "characters": ["Ada Lovelace", "Alan Turing"]},
    {"text": "\"Look at this!\" Ada Lovelace said.", "characters": ["Ada Lovelace"]},
    {"text": "A quiet street at night.", "characters": []},
]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", "pipelines", "generate", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    from identities.library import IdentityLibrary

    root = tmp_path_factory.mktemp("library")
    lib = IdentityLibrary(root)
    g = torch.Generator().manual_seed(0)
    for name in ("Ada Lovelace", "Alan Turing"):
        lib.add(name, torch.randn(2, 32, generator=g) * 0.05, torch.randn(2, 64, generator=g) * 0.05)
    return root


@pytest.fixture()
def panels_file(tmp_path):
    count = iter(range(1000))

    def write(data):
        path = tmp_path / f"panels_{next(count)}.json"
        path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
        return str(path)
    return write


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_end_to_end_tiny_run_writes_every_file(library, panels_file, tmp_path):
    out = tmp_path / "comic"
    done = run_cli("--panels", panels_file(PANELS), "--preset", "tiny", "--library", str(library),
                   "--style", "manga", "--keywords", "comic style,vivid colors", "--seed", "5",
                   "--candidates", "2", "--title", "School Day", "--writer", " Grace  Hopper ",
                   "--out", str(out))
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(out / "comic.cbz") as cbz:
        info = cbz.read("ComicInfo.xml").decode()
    assert "<Writer>Grace Hopper</Writer>" in info and "<Title>School Day</Title>" in info
    for name in ("panel_01.png", "panel_02.png", "panel_03.png", "panel_01_c2.png", "page_1.png",
                 "comic.pdf", "project.json", "comic.zip", "comic.cbz"):
        assert (out / name).is_file(), name
        assert str(out / name) in done.stdout
    progress = [line for line in done.stderr.splitlines() if line.startswith("panel ")]
    assert [line.split(":")[0] for line in progress] == ["panel 1/3", "panel 2/3", "panel 3/3"]
    assert "[Ada Lovelace, Alan Turing]" in progress[0]
    project = json.loads((out / "project.json").read_text())
    assert project["preset"] == "tiny" and project["style"] == "manga" and project["seed"] == 5
    assert project["keywords"] == ["comic style", "vivid colors"] and project["title"] == "School Day"
    assert project["cast"] == ["Ada Lovelace", "Alan Turing"]
    assert Image.open(out / "panel_01.png").size == (64, 64)

    # regenerate from the zip alone (identities embedded): the same panels, pixel for pixel
    again = tmp_path / "again"
    assert main(["generate", "--project", str(out / "comic.zip"),
                 "--out", str(again), "--no-faces"]) == 0
    for name in ("panel_01.png", "panel_02.png", "panel_03.png", "panel_02_c2.png"):
        assert np.array_equal(np.asarray(Image.open(out / name)), np.asarray(Image.open(again / name)))
    assert json.loads((again / "project.json").read_text()) == project

    # a new base seed replaces the saved per-panel seeds; identities can be left out of the zip
    third = tmp_path / "third"
    assert main(["generate", "--project", str(out / "comic.zip"), "--seed", "9", "--candidates", "1",
                 "--out", str(third), "--no-faces", "--no-identities"]) == 0
    redrawn = json.loads((third / "project.json").read_text())
    assert [p["seed"] for p in redrawn["panels"]] == [9, 10, 11] and redrawn["candidates"] == 1
    with zipfile.ZipFile(third / "comic.zip") as archive:
        assert not [n for n in archive.namelist() if n.startswith("identities/")]


@pytest.mark.parametrize("case", ["empty", "style", "character"])
def test_errors_from_a_real_process(case, library, panels_file, tmp_path):
    args = {"empty": lambda: ["--panels", panels_file([])],
            "style": lambda: ["--panels", panels_file(PANELS), "--style", "vaporwave"],
            "character": lambda: ["--panels", panels_file([{"text": "Grace Hopper codes.",
                                                            "characters": ["Grace Hopper"]}])]}[case]()
    done = run_cli(*args, "--preset", "tiny", "--library", str(library), "--out", str(tmp_path / "o"))
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert {"empty": "the panel list is empty", "style": "unknown style 'vaporwave'",
            "character": "character 'Grace Hopper' is not in the identity library"}[case] in line
    if case == "character":
        assert line.endswith("known: Ada Lovelace, Alan Turing")
    assert not (tmp_path / "o" / "comic.pdf").exists()


def test_usage_errors_exit_2_with_one_line(library, panels_file, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("generation:\n  steps: -1\n")
    four = [{"text": "A B, C D, E F and G H", "characters": ["A B", "C D", "E F", "G H"]}]
    cases = [
        (["--panels", panels_file("[{oops")], "is not valid JSON"),
        (["--panels", panels_file({"text": "x"})], "must be a JSON list"),
        (["--panels", panels_file([{"text": "x", "characters": "Ada"}])], "panel 1: 'characters'"),
        (["--panels", str(tmp_path / "missing.json")], "panels file not found"),
        (["--panels", panels_file(four)], "panel 1 has 4 identities"),
        (["--panels", panels_file(PANELS), "--keywords", "neon"], "unknown style keyword 'neon'"),
        (["--panels", panels_file(PANELS), "--out", str(blocker / "sub")], "cannot write to output folder"),
        (["--panels", panels_file(PANELS), "--config", str(bad_config)], "'generation.steps' must be positive"),
        (["--panels", panels_file(PANELS), "--preset", "huge"], "unknown preset 'huge'"),
        (["--panels", panels_file(PANELS), "--width", "60"], "width must be a positive multiple of 8"),
        (["--project", str(tmp_path / "nothing.zip")], "project file not found"),
        (["--panels", panels_file(PANELS), "--seed", "x"], "invalid int value"),
        ([], "one of the arguments --panels --project is required"),
    ]
    for args, message in cases:
        argv = ["generate", *args]
        if "--preset" not in args and "--config" not in args:
            argv += ["--preset", "tiny"]
        if "--out" not in args:
            argv += ["--out", str(tmp_path / "out")]
        code = main([*argv, "--library", str(library)])
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert message in one_error_line(err), (args, err)


def test_model_unavailable_is_one_line(library, panels_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["generate", "--panels", panels_file([{"text": "a street"}]), "--preset", "sdxl",
                 "--library", str(library), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "not in the Hugging Face cache" in one_error_line(capsys.readouterr().err)
