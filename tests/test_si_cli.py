"""The identity command line, ``python -m stableidentity``, run as a real subprocess.

A few error variants run in-process through ``cli.main`` to keep the suite fast; everything that
concerns exit codes, stdout/stderr and the entry point itself runs as a subprocess.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from PIL import Image

from stableidentity import cli
from identities.library import IdentityLibrary

REPO = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COMIC_PRESET", "COMIC_CONFIG")}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO), **extra)
    return env


def run_cli(*args: str, cwd: Path = REPO, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stableidentity", *map(str, args)], cwd=cwd,
                          env=_env(), capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, fragment: str, code: int = 2) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert fragment in lines[0], lines[0]


def vectors(seed: int = 0, dims=(32, 64)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, dims[0], generator=g) * 0.05, torch.randn(2, dims[1], generator=g) * 0.05


@pytest.fixture
def library(tmp_path):
    lib = IdentityLibrary(tmp_path / "lib")
    lib.add("Ada Lovelace", *vectors(1), pronouns="she", face=np.zeros((64, 64, 3), np.uint8),
            metadata={"base_model": "tiny-sdxl", "preset": "tiny", "steps": "20"})
    lib.add("Alan Turing", *vectors(2), pronouns="he",
            metadata={"base_model": "tiny-sdxl", "preset": "tiny", "steps": "7"})
    return lib


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory, astronaut):
    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    return path


# ----------------------------------------------------------------------------- list

def test_list_table_and_problems_on_stderr(library):
    (library.root / "broken").mkdir()
    (library.root / "broken" / "identity.safetensors").write_bytes(b"junk")
    result = run_cli("list", "--library", library.root)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split() == ["NAME", "PRONOUNS", "BASE", "MODEL", "STEPS", "CREATED"]
    assert lines[1].startswith("Ada Lovelace") and "she" in lines[1] and "tiny-sdxl" in lines[1]
    assert " 20 " in lines[1] and lines[2].startswith("Alan Turing") and " 7 " in lines[2]
    assert len(lines) == 3
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 1 and "broken" in warnings[0] and "not a readable safetensors" in warnings[0]


def test_list_json(library):
    result = run_cli("list", "--json", "--library", library.root)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["Ada Lovelace", "Alan Turing"]
    ada = rows[0]
    assert ada["pronouns"] == "she" and ada["base_model"] == "tiny-sdxl" and ada["steps"] == "20"
    assert ada["dims"] == [32, 64] and Path(ada["face"]).is_file() and rows[1]["face"] is None
    assert Path(ada["folder"]) == library.root / "ada-lovelace"
    assert ada["created"][:4].isdigit()


def test_library_defaults_to_the_config_library_dir_relative_to_cwd(tmp_path, monkeypatch, capsys):
    IdentityLibrary(tmp_path / "embeddings").add("Ada Lovelace", *vectors())
    IdentityLibrary(tmp_path / "custom").add("Grace Hopper", *vectors())
    config = tmp_path / "preset.yaml"
    config.write_text((REPO / "configs" / "tiny.yaml").read_text().replace(
        "library_dir: embeddings", "library_dir: custom"))
    assert "library_dir: custom" in config.read_text()
    # the preset's library_dir ("embeddings"), relative to the current directory
    default = run_cli("list", "--json", "--preset", "tiny", cwd=tmp_path)
    assert [r["name"] for r in json.loads(default.stdout)] == ["Ada Lovelace"], default.stderr
    # a config file's library_dir; --library wins over it (in-process: the same code path)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["list", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "Grace Hopper" in out and "Ada Lovelace" not in out
    assert cli.main(["list", "--config", str(config), "--library", "embeddings"]) == 0
    out = capsys.readouterr().out
    assert "Ada Lovelace" in out and "Grace Hopper" not in out
    assert cli.main(["list", "--library", "nowhere"]) == 0
    assert capsys.readouterr().out.strip() == "no identities in nowhere"


def test_config_error_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  steps: -3\n")
    assert_one_line_error(run_cli("list", "--config", bad), "'train.steps' must be positive")


def test_usage_errors_are_one_line():
    assert_one_line_error(run_cli("frobnicate"), "invalid choice: 'frobnicate'")
    assert_one_line_error(run_cli(), "required: COMMAND")


# ----------------------------------------------------------------------------- manage

def test_export_import_rename_delete(library, tmp_path, capsys):
    out = tmp_path / "ada.safetensors"
    exported = run_cli("export", "ada lovelace", out, "--library", library.root)
    assert exported.returncode == 0 and str(out) in exported.stdout, exported.stderr
    state = safetensors.torch.load_file(str(out))
    assert torch.equal(state["clip_l"], vectors(1)[0]) and torch.equal(state["clip_g"], vectors(1)[1])

    imported = run_cli("import", out, "--name", "Ada King", "--pronouns", "they",
                       "--library", library.root, "--preset", "tiny")
    assert imported.returncode == 0 and "imported 'Ada King'" in imported.stdout, imported.stderr
    got = library.get("Ada King")
    assert got.pronouns == "they" and torch.equal(got.clip_l, vectors(1)[0])

    assert cli.main(["rename", "Ada King", "Augusta King", "--library", str(library.root)]) == 0
    assert "renamed 'Ada King' to 'Augusta King'" in capsys.readouterr().out
    deleted = run_cli("delete", "alan turing", "--library", library.root)
    assert deleted.returncode == 0 and "deleted" in deleted.stdout, deleted.stderr
    assert library.names() == ["Ada Lovelace", "Augusta King"]


def test_manage_errors_exit_2_with_one_line(library, tmp_path):
    before = sorted(p.name for p in library.root.iterdir())
    assert_one_line_error(run_cli("delete", "Nobody Here", "--library", library.root),
                          "no identity named 'Nobody Here'")
    pickled = tmp_path / "learned_embeds.bin"
    torch.save({"clip_l": torch.zeros(2, 32), "clip_g": torch.zeros(2, 64)}, pickled)
    assert_one_line_error(run_cli("import", pickled, "--name", "Eve Bad", "--library", library.root),
                          "pickle")
    assert sorted(p.name for p in library.root.iterdir()) == before


def test_import_checks_the_widths_against_the_preset(library, tmp_path):
    """A 1280/768-swapped file, or one made with the tiny preset, is refused under --preset sdxl
    (exit 2, one line, nothing written); the right widths are accepted."""
    before = sorted(p.name for p in library.root.iterdir())
    swapped = tmp_path / "swapped.safetensors"
    real_l, real_g = vectors(3, dims=(768, 1280))
    safetensors.torch.save_file({"clip_l": real_g, "clip_g": real_l}, str(swapped))
    assert_one_line_error(run_cli("import", swapped, "--name", "Eve Swap", "--preset", "sdxl",
                                  "--library", library.root),
                          "clip_l and clip_g are swapped (clip_l is 1280 wide, clip_g 768); "
                          "this model needs clip_l 768 and clip_g 1280 wide")
    tiny = tmp_path / "tiny.safetensors"
    library.export("Ada Lovelace", tiny)
    argv = ["import", str(tiny), "--name", "Eve Tiny", "--library", str(library.root)]
    assert cli.main(argv + ["--preset", "sdxl"]) == 2
    assert sorted(p.name for p in library.root.iterdir()) == before
    good = tmp_path / "good.safetensors"
    safetensors.torch.save_file({"clip_l": real_l, "clip_g": real_g}, str(good))
    assert cli.main(["import", str(good), "--name", "Eve Real", "--library", str(library.root),
                     "--preset", "sdxl"]) == 0
    assert cli.main(argv + ["--preset", "tiny"]) == 0
    assert library.get("Eve Real").dims == (768, 1280) and library.get("Eve Tiny").dims == (32, 64)


@pytest.mark.parametrize("argv, fragment", [
    (["rename", "Ada Lovelace", "42"], "has no letters"),
    (["rename", "Ada Lovelace", "alan turing"], "already exists"),
    (["export", "Ada Lovelace", "{tmp}/ada.pt"], "export to a .safetensors file"),
    (["export", "Nobody", "{tmp}/x.safetensors"], "no identity named 'Nobody'"),
    (["import", "{tmp}/missing.safetensors", "--name", "Eve"], "file not found"),
    (["import", "{tmp}/ada.safetensors", "--name", "Ada Lovelace"], "already exists"),
    (["import", "{tmp}/ada.safetensors", "--name", "Eve/Adams"], "path separator"),
    (["import", "{tmp}/ada.safetensors", "--name", "Eve", "--pronouns", "xe"], "unknown pronouns"),
    (["import", "{tmp}/ada.safetensors", "--name", "Eve", "--face", "{tmp}/none.png"],
     "face image not found"),
])
def test_more_bad_input_exits_2(library, tmp_path, capsys, argv, fragment):
    library.export("Ada Lovelace", tmp_path / "ada.safetensors")
    before = library.names()
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv] + ["--library", str(library.root),
                                                                "--preset", "tiny"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err
    assert library.names() == before


# ----------------------------------------------------------------------------- train

def test_train_refuses_a_non_image_before_loading_models(tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_text("this is not an image")
    result = run_cli("train", "--image", photo, "--name", "Ada Lovelace", "--preset", "tiny",
                     "--library", tmp_path / "lib")
    assert_one_line_error(result, "not a readable image")
    assert not (tmp_path / "lib").exists()


def test_train_refuses_an_existing_name_before_loading_models(library, astronaut_png):
    result = run_cli("train", "--image", astronaut_png, "--name", "ADA lovelace", "--preset", "tiny",
                     "--library", library.root)
    assert_one_line_error(result, "already exists")
    assert "--overwrite" in result.stderr and "loading" not in result.stderr


@pytest.mark.parametrize("argv, fragment", [
    (["--name", "42"], "has no letters"),
    (["--name", "Ada", "--pronouns", "it"], "unknown pronouns"),
    (["--name", "Ada", "--image", "{tmp}/missing.png"], "photo not found"),
    (["--name", "Ada", "--preset", "huge"], "unknown preset 'huge'"),
    (["--name", "Ada", "--steps", "0"], "must be positive"),
])
def test_train_bad_input_exits_2(tmp_path, capsys, astronaut_png, argv, fragment):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--image" not in argv:
        argv += ["--image", str(astronaut_png)]
    assert cli.main(["train", *argv, "--library", str(tmp_path / "lib")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err
    assert not (tmp_path / "lib").exists()


def test_train_without_a_face_exits_2(tmp_path, capsys, tiny_components):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (256, 256), (120, 120, 120)).save(blank)
    code = cli.main(["train", "--image", str(blank), "--name", "Ada Lovelace", "--preset", "tiny",
                     "--steps", "2", "--library", str(tmp_path / "lib")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: ") and "no face" in err[-1], err
    assert IdentityLibrary(tmp_path / "lib").list() == []


def test_train_end_to_end_on_the_astronaut(tmp_path, astronaut_png):
    root = tmp_path / "lib"
    result = run_cli("train", "--image", astronaut_png, "--name", "Eileen Collins",
                     "--pronouns", "she/her", "--preset", "tiny", "--steps", "2", "--library", root,
                     timeout=600)
    assert result.returncode == 0, result.stderr
    assert "saved 'Eileen Collins'" in result.stdout
    assert "2/2" in result.stderr and "loss=" in result.stderr  # the tqdm progress bar
    assert "Traceback" not in result.stderr
    identity = IdentityLibrary(root).get("eileen collins")
    assert identity.pronouns == "she" and identity.dims == (32, 64) and identity.token_count == 2
    assert torch.isfinite(identity.clip_l).all() and torch.isfinite(identity.clip_g).all()
    meta = identity.metadata
    assert meta["preset"] == "tiny" and meta["base_model"] == "tiny-sdxl" and meta["steps"] == "2"
    assert meta["photo_sha256"] == hashlib.sha256(astronaut_png.read_bytes()).hexdigest()
    with Image.open(identity.face_path) as face:
        assert face.size == (512, 512)
    # the same name again needs --overwrite
    again = run_cli("train", "--image", astronaut_png, "--name", "Eileen Collins", "--preset",
                    "tiny", "--library", root)
    assert_one_line_error(again, "already exists")


def test_ctrl_c_during_training_exits_130_and_saves_nothing(tmp_path, astronaut_png):
    root = tmp_path / "lib"
    IdentityLibrary(root).add("Ada Lovelace", *vectors())
    before = sorted(p.name for p in root.iterdir())
    proc = subprocess.Popen(
        [sys.executable, "-m", "stableidentity", "train", "--image", str(astronaut_png), "--name",
         "Eileen Collins", "--preset", "tiny", "--steps", "5000", "--library", str(root)],
        cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stderr.read1(4096), b"")),
                              daemon=True)
    reader.start()
    deadline = time.monotonic() + 300
    try:
        while b"loss=" not in b"".join(chunks):  # the first step has reported progress
            assert proc.poll() is None, b"".join(chunks).decode(errors="replace")
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=10)
    stderr = b"".join(chunks).decode(errors="replace")
    assert code == 130, stderr
    assert stderr.strip().splitlines()[-1] == "error: cancelled; nothing was saved"
    assert "Traceback" not in stderr
    assert sorted(p.name for p in root.iterdir()) == before  # no entry, no temp folder
    assert IdentityLibrary(root).names() == ["Ada Lovelace"]
