"""The identity library: storage layout, round trips, atomic writes, damaged entries, imports."""

from __future__ import annotations

import copy
import os
import pickle
import shutil
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import safetensors.torch
import torch
from PIL import Image
from safetensors import safe_open

from identities.library import (FORMAT, Identity, IdentityExists, IdentityLibrary,
                                    IdentityNotFound, LibraryError, LibraryProblem, save_trained)
from identities.names import InvalidName, InvalidPronouns

TINY = (32, 64)
REAL = (768, 1280)
REPO = Path(__file__).resolve().parents[1]


def vectors(dims=TINY, seed=0, scale=0.05):
    """Random (2, d1), (2, d2) float32 embeddings of identity-like magnitude."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(2, dims[0], generator=g) * scale, torch.randn(2, dims[1], generator=g) * scale)


def face_array(seed=0, size=64):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.fixture
def lib(tmp_path):
    return IdentityLibrary(tmp_path / "lib")


def entries_on_disk(library):
    """Every name under the library root except the lock file."""
    if not library.root.exists():
        return []
    return sorted(p.name for p in library.root.iterdir() if p.name != ".lock")


def write_raw(path, tensors, metadata=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file(tensors, str(path), metadata=metadata)
    return path


# ----------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("dims", [TINY, REAL], ids=["tiny", "sdxl"])
def test_add_get_list_round_trip(lib, dims):
    clip_l, clip_g = vectors(dims)
    added = lib.add("Ada Lovelace", clip_l, clip_g, face=face_array(size=600), pronouns="She/Her",
                    metadata={"base_model": "stabilityai/stable-diffusion-xl-base-1.0", "steps": 450})
    got = lib.get("  ada   LOVELACE ")
    assert got == added
    assert got.name == "Ada Lovelace" and got.pronouns == "she"
    assert torch.equal(got.clip_l, clip_l) and torch.equal(got.clip_g, clip_g)
    assert got.clip_l.dtype == torch.float32 and got.clip_l.device.type == "cpu"
    assert got.token_count == 2 and got.dims == dims
    assert got.metadata["base_model"] == "stabilityai/stable-diffusion-xl-base-1.0"
    assert got.metadata["steps"] == "450"
    assert datetime.fromisoformat(got.metadata["created"]).year >= 2024
    assert lib.names() == ["Ada Lovelace"] and [i.name for i in lib.list()] == ["Ada Lovelace"]
    assert "ADA LOVELACE" in lib and "Ada King" not in lib
    assert lib.problems() == []
    with Image.open(got.face_path) as face:
        assert face.format == "PNG" and face.size == (512, 512) and face.mode == "RGB"


def test_stored_file_is_the_sdxl_textual_inversion_layout(lib):
    clip_l, clip_g = vectors(REAL)
    identity = lib.add("Grace Hopper", clip_l, clip_g, pronouns="she", face=face_array(),
                       metadata={"base_model": "sdxl", "preset": "sdxl", "steps": "450",
                                 "photo_sha256": "ab" * 32})
    assert entries_on_disk(lib) == ["grace-hopper"]
    assert sorted(p.name for p in identity.folder.iterdir()) == ["face.png", "identity.safetensors"]
    with safe_open(str(identity.folder / "identity.safetensors"), framework="pt") as handle:
        assert sorted(handle.keys()) == ["clip_g", "clip_l"]
        assert handle.get_tensor("clip_l").shape == (2, 768)
        assert handle.get_tensor("clip_g").shape == (2, 1280)
        assert handle.get_tensor("clip_g").dtype == torch.float32
        meta = handle.metadata()
    assert meta["name"] == "Grace Hopper" and meta["pronouns"] == "she"
    assert meta["format"] == FORMAT and meta["format_version"] == "1"
    assert {"base_model", "preset", "steps", "created", "photo_sha256"} <= set(meta)


def test_saved_identity_loads_with_diffusers_load_textual_inversion(lib, tiny_components):
    from diffusers import StableDiffusionXLPipeline

    clip_l, clip_g = vectors(TINY, seed=3)
    identity = lib.add("Ada Lovelace", clip_l, clip_g)
    state = safetensors.torch.load_file(str(identity.folder / "identity.safetensors"))
    # deep-copy the parts (Components itself holds a dlib detector that cannot be copied)
    pipe = StableDiffusionXLPipeline(**copy.deepcopy(tiny_components.pipeline_parts()))
    tokens = ["<a>", "<b>"]
    pipe.load_textual_inversion(state["clip_g"], token=tokens, text_encoder=pipe.text_encoder_2,
                                tokenizer=pipe.tokenizer_2)
    pipe.load_textual_inversion(state["clip_l"], token=tokens, text_encoder=pipe.text_encoder,
                                tokenizer=pipe.tokenizer)
    for tokenizer, encoder, stored in ((pipe.tokenizer, pipe.text_encoder, clip_l),
                                       (pipe.tokenizer_2, pipe.text_encoder_2, clip_g)):
        ids = tokenizer.convert_tokens_to_ids(tokens)
        assert ids[0] >= 49408 and ids[1] == ids[0] + 1
        assert torch.equal(encoder.get_input_embeddings().weight[ids].detach(), stored)
    # the shared fixture was not touched
    assert len(tiny_components.tokenizer) == 49408
    assert tiny_components.text_encoder.get_input_embeddings().weight.shape[0] == 49408


def test_rename_moves_metadata_and_folder(lib):
    clip_l, clip_g = vectors()
    lib.add("Ada Lovelace", clip_l, clip_g, face=face_array(), pronouns="she")
    renamed = lib.rename("ada lovelace", "Ada King")
    assert renamed.name == "Ada King" and renamed.folder.name == "ada-king"
    assert lib.names() == ["Ada King"] and "Ada Lovelace" not in lib
    got = lib.get("Ada King")
    assert torch.equal(got.clip_l, clip_l) and got.pronouns == "she" and got.face_path is not None
    assert entries_on_disk(lib) == ["ada-king"]
    assert sorted(p.name for p in got.folder.iterdir()) == ["face.png", "identity.safetensors"]
    # changing only the case keeps the folder
    assert lib.rename("Ada King", "ADA KING").folder.name == "ada-king"
    assert lib.names() == ["ADA KING"]


def test_rename_errors(lib):
    lib.add("Ada Lovelace", *vectors())
    lib.add("Grace Hopper", *vectors(seed=1))
    with pytest.raises(IdentityExists):
        lib.rename("Ada Lovelace", "grace hopper")
    with pytest.raises(IdentityNotFound):
        lib.rename("Nobody", "Somebody")
    with pytest.raises(InvalidName):
        lib.rename("Ada Lovelace", "Ada/Lovelace")
    assert lib.names() == ["Ada Lovelace", "Grace Hopper"]


def test_delete(lib):
    lib.add("Ada Lovelace", *vectors())
    lib.add("Grace Hopper", *vectors(seed=1))
    lib.delete("ADA lovelace")
    assert lib.names() == ["Grace Hopper"] and entries_on_disk(lib) == ["grace-hopper"]
    with pytest.raises(IdentityNotFound, match="no identity named 'Ada Lovelace'.*Grace Hopper"):
        lib.delete("Ada Lovelace")


def test_existing_name_is_refused_unless_overwrite(lib):
    first = vectors(seed=1)
    second = vectors(seed=2)
    original = lib.add("Ada Lovelace", *first, face=face_array(1))
    with pytest.raises(IdentityExists, match="already exists"):
        lib.add("  ADA  lovelace", *second)
    assert torch.equal(lib.get("Ada Lovelace").clip_l, first[0])
    replaced = lib.add("Ada Lovelace", *second, overwrite=True, pronouns="she")
    assert replaced.folder == original.folder
    got = lib.get("Ada Lovelace")
    assert torch.equal(got.clip_l, second[0]) and torch.equal(got.clip_g, second[1])
    assert got.pronouns == "she" and got.face_path is None  # the old face went with the old entry
    assert entries_on_disk(lib) == ["ada-lovelace"]


def test_folder_names_are_safe_and_unique(lib):
    a = lib.add("Zoë Smith", *vectors())
    b = lib.add("Zoe Smith", *vectors(seed=1))
    c = lib.add("Examples", *vectors(seed=2))
    d = lib.add("周 杰伦", *vectors(seed=3))
    assert (a.folder.name, b.folder.name) == ("zoe-smith", "zoe-smith-2")
    assert c.folder.name == "examples-2"  # embeddings/examples/ is reserved for shipped examples
    assert d.folder.name == "identity"
    assert all(i.folder.parent == lib.root for i in lib.list())
    assert sorted(lib.names()) == sorted(["Zoë Smith", "Zoe Smith", "Examples", "周 杰伦"])


def test_identity_value_semantics(lib):
    lib.add("Ada Lovelace", *vectors())
    a, b = lib.get("Ada Lovelace"), lib.get("ada lovelace")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert isinstance(a, Identity)
    with pytest.raises(AttributeError):
        a.name = "x"  # frozen


def test_lookups_never_fail_on_odd_input(lib):
    assert lib.list() == [] and lib.problems() == [] and lib.names() == []
    assert not lib.root.exists()  # reading does not create the folder
    assert 42 not in lib and "" not in lib and "../etc" not in lib
    with pytest.raises(IdentityNotFound, match="library is empty"):
        lib.get("Ada Lovelace")


def test_root_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    library = IdentityLibrary(tmp_path / "file")
    with pytest.raises(LibraryError, match="is a file"):
        library.list()
    with pytest.raises(LibraryError, match="cannot save"):
        library.add("Ada Lovelace", *vectors())


def test_concurrent_writers_do_not_lose_entries(lib):
    names = [f"Person {chr(65 + i)}" for i in range(8)]

    def add(name, seed):
        lib.add(name, *vectors(seed=seed))

    threads = [threading.Thread(target=add, args=(n, i)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lib.names() == sorted(names)
    assert lib.problems() == []


# ----------------------------------------------------------------------------- bad input to add

@pytest.mark.parametrize("clip_l, clip_g, fragment", [
    (torch.zeros(3, 32), torch.zeros(2, 64), "clip_l holds 3 vectors"),
    (torch.zeros(2, 32), torch.zeros(1, 64), "clip_g holds 1 vector;"),
    (torch.zeros(32), torch.zeros(2, 64), "must have shape"),
    (torch.zeros(2, 32, dtype=torch.int64), torch.zeros(2, 64), "floating-point"),
    (torch.full((2, 32), float("nan")), torch.zeros(2, 64), "NaN"),
    (torch.zeros(2, 32), torch.full((2, 64), float("inf")), "NaN or infinite"),
    ([[0.0] * 32] * 2, torch.zeros(2, 64), "must be a tensor"),
])
def test_add_refuses_bad_tensors_and_writes_nothing(lib, clip_l, clip_g, fragment):
    with pytest.raises(LibraryError, match=fragment):
        lib.add("Ada Lovelace", clip_l, clip_g)
    assert entries_on_disk(lib) == []


def test_add_refuses_bad_names_pronouns_and_faces(lib, tmp_path):
    with pytest.raises(InvalidName):
        lib.add("../../etc/passwd", *vectors())
    with pytest.raises(InvalidPronouns):
        lib.add("Ada Lovelace", *vectors(), pronouns="xe")
    with pytest.raises(LibraryError, match="face image not found"):
        lib.add("Ada Lovelace", *vectors(), face=tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(LibraryError, match="not a readable image"):
        lib.add("Ada Lovelace", *vectors(), face=tmp_path / "bad.png")
    with pytest.raises(LibraryError, match="uint8"):
        lib.add("Ada Lovelace", *vectors(), face=np.zeros((8, 8, 3), np.float32))
    assert entries_on_disk(lib) == []


def test_face_can_be_a_path_or_pil_image(lib, tmp_path):
    Image.fromarray(face_array(size=100)).save(tmp_path / "face.jpg")
    a = lib.add("Ada Lovelace", *vectors(), face=tmp_path / "face.jpg")
    b = lib.add("Grace Hopper", *vectors(), face=Image.fromarray(face_array(size=80)).convert("L"))
    with Image.open(a.face_path) as image:
        assert image.size == (100, 100)
    with Image.open(b.face_path) as image:
        assert image.size == (80, 80) and image.mode == "RGB"


# ----------------------------------------------------------------------------- atomic writes

def _fail(*args, **kwargs):
    raise RuntimeError("simulated crash")


@pytest.mark.parametrize("target", ["tensors", "face"])
def test_failure_mid_write_leaves_the_library_unchanged(lib, monkeypatch, target):
    old = vectors(seed=1)
    lib.add("Ada Lovelace", *old, face=face_array(1))
    before = entries_on_disk(lib)
    if target == "tensors":
        monkeypatch.setattr(safetensors.torch, "save_file", _fail)
    else:
        monkeypatch.setattr(Image.Image, "save", _fail)
    with pytest.raises(RuntimeError, match="simulated crash"):
        lib.add("Grace Hopper", *vectors(seed=2), face=face_array(2))
    with pytest.raises(RuntimeError, match="simulated crash"):
        lib.add("Ada Lovelace", *vectors(seed=3), face=face_array(3), overwrite=True)
    monkeypatch.undo()
    assert entries_on_disk(lib) == before == ["ada-lovelace"]  # no temp folders left either
    got = lib.get("Ada Lovelace")
    assert torch.equal(got.clip_l, old[0]) and got.face_path is not None
    assert lib.names() == ["Ada Lovelace"] and lib.problems() == []


def test_failure_while_swapping_in_restores_the_old_entry(lib, monkeypatch):
    old = vectors(seed=1)
    lib.add("Ada Lovelace", *old)
    real_rename = os.rename
    calls = []

    def rename(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:  # old moved aside; now the staged folder would move in
            raise OSError(28, "No space left on device")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(LibraryError, match="No space left on device"):
        lib.add("Ada Lovelace", *vectors(seed=2), overwrite=True)
    monkeypatch.undo()
    assert calls[0][0] == "ada-lovelace" and calls[0][1].startswith(".old.")
    assert entries_on_disk(lib) == ["ada-lovelace"]
    assert torch.equal(lib.get("Ada Lovelace").clip_l, old[0])


def test_failure_during_rename_keeps_the_old_name(lib, monkeypatch):
    lib.add("Ada Lovelace", *vectors())
    monkeypatch.setattr(safetensors.torch, "save_file", _fail)
    with pytest.raises(RuntimeError):
        lib.rename("Ada Lovelace", "Ada King")
    monkeypatch.undo()
    assert lib.names() == ["Ada Lovelace"]
    folder = lib.get("Ada Lovelace").folder
    assert sorted(p.name for p in folder.iterdir()) == ["identity.safetensors"]


_HARD_CRASH = """
import os, sys, torch
from PIL import Image
from identities.library import IdentityLibrary
lib = IdentityLibrary(sys.argv[1])
Image.Image.save = lambda *a, **k: os._exit(7)   # the process dies after the tensors are written
lib.add(sys.argv[2], torch.ones(2, 32), torch.ones(2, 64), face=Image.new("RGB", (8, 8)),
        overwrite=True)
"""


def test_hard_crash_leaves_no_half_identity_and_leftovers_are_cleaned(lib):
    old = vectors(seed=1)
    lib.add("Ada Lovelace", *old)
    for name in ("Grace Hopper", "Ada Lovelace"):  # a new identity, then an overwrite
        result = subprocess.run([sys.executable, "-c", _HARD_CRASH, str(lib.root), name],
                                cwd=REPO, capture_output=True, text=True, timeout=120)
        assert result.returncode == 7, result.stderr
        # one staged folder is left (each write first tidies the previous crash's leftovers) ...
        leftovers = [n for n in entries_on_disk(lib) if n.startswith(".tmp.")]
        assert len(leftovers) == 1
        assert (lib.root / leftovers[0] / "identity.safetensors").is_file()
        # ... and readers ignore it: the library is as before the crash
        assert entries_on_disk(lib) == sorted(["ada-lovelace", leftovers[0]])
        assert lib.names() == ["Ada Lovelace"] and lib.problems() == []
        assert torch.equal(lib.get("Ada Lovelace").clip_l, old[0])
    # the next write cleans them up
    lib.add("Grace Hopper", *vectors(seed=2))
    assert entries_on_disk(lib) == ["ada-lovelace", "grace-hopper"]


def test_crash_between_moving_aside_and_committing_is_recovered(lib):
    old = vectors(seed=1)
    entry = lib.add("Ada Lovelace", *old).folder
    # state after a crash in the middle of an overwrite: old entry moved aside, new one staged
    os.rename(entry, lib.root / ".old.0123456789ab.ada-lovelace")
    (lib.root / ".tmp.ba9876543210.ada-lovelace").mkdir()
    assert lib.names() == ["Ada Lovelace"]  # still readable from where it was moved
    assert torch.equal(lib.get("Ada Lovelace").clip_l, old[0])
    lib.add("Grace Hopper", *vectors(seed=2))  # any write recovers
    assert entries_on_disk(lib) == ["ada-lovelace", "grace-hopper"]
    assert torch.equal(lib.get("Ada Lovelace").clip_l, old[0])


def test_crash_after_committing_drops_the_old_copy(lib):
    new = vectors(seed=2)
    lib.add("Ada Lovelace", *new)
    stale = lib.root / ".old.0123456789ab.ada-lovelace"
    write_raw(stale / "identity.safetensors", dict(zip(("clip_l", "clip_g"), vectors(seed=1))),
              {"name": "Ada Lovelace"})
    (lib.root / ".del.0123456789ab.grace-hopper").mkdir()
    assert torch.equal(lib.get("Ada Lovelace").clip_l, new[0]) and lib.problems() == []
    lib.delete("Ada Lovelace")
    assert entries_on_disk(lib) == []


# ----------------------------------------------------------------------------- damaged entries

def test_damaged_entries_are_reported_and_skipped(lib):
    good = vectors()
    lib.add("Ada Lovelace", *good)
    root = lib.root
    (root / "garbage").mkdir()
    (root / "garbage" / "identity.safetensors").write_bytes(b"\x00\x01 definitely not safetensors")
    write_raw(root / "no-clip-g" / "identity.safetensors", {"clip_l": torch.zeros(2, 32)},
              {"name": "No Clipg"})
    write_raw(root / "three-rows" / "identity.safetensors",
              {"clip_l": torch.zeros(3, 32), "clip_g": torch.zeros(3, 64)}, {"name": "Three Rows"})
    write_raw(root / "nans" / "identity.safetensors",
              {"clip_l": torch.full((2, 32), float("nan")), "clip_g": torch.zeros(2, 64)},
              {"name": "Nan Person"})
    write_raw(root / "nameless" / "identity.safetensors",
              {"clip_l": torch.zeros(2, 32), "clip_g": torch.zeros(2, 64)})
    write_raw(root / "future" / "identity.safetensors",
              {"clip_l": torch.zeros(2, 32), "clip_g": torch.zeros(2, 64)},
              {"name": "Future Person", "format_version": "99"})
    (root / "empty").mkdir()
    shutil.copytree(root / "ada-lovelace", root / "ada-copy")
    (root / "examples").mkdir()           # reserved, not an entry
    (root / "README.md").write_text("x")  # files are not entries

    assert lib.names() == ["Ada Lovelace"]
    assert torch.equal(lib.get("Ada Lovelace").clip_l, good[0])
    problems = {p.folder.name: p.message for p in lib.problems()}
    assert all(isinstance(p, LibraryProblem) for p in lib.problems())
    assert set(problems) == {"garbage", "no-clip-g", "three-rows", "nans", "nameless", "future",
                             "empty", "ada-copy"}
    assert "not a readable safetensors file" in problems["garbage"]
    assert "lacks the clip_g tensor" in problems["no-clip-g"]
    assert "holds 3 vectors" in problems["three-rows"]
    assert "NaN" in problems["nans"]
    assert "no valid 'name'" in problems["nameless"]
    assert "newer" in problems["future"]
    assert "no identity.safetensors" in problems["empty"]
    assert "another folder (ada-lovelace)" in problems["ada-copy"]
    assert all("\n" not in message for message in problems.values())

    # a damaged entry with a readable name: get says so, add needs overwrite, delete works
    with pytest.raises(LibraryError, match="damaged: .*holds 3 vectors"):
        lib.get("Three Rows")
    assert "Three Rows" in lib
    with pytest.raises(IdentityExists):
        lib.add("Three Rows", *vectors())
    lib.add("Three Rows", *vectors(), overwrite=True)
    assert lib.get("Three Rows").folder.name == "three-rows"
    lib.delete("Nan Person")
    assert not (root / "nans").exists()


# ----------------------------------------------------------------------------- export / import

def test_export_import_round_trip(lib, tmp_path):
    clip_l, clip_g = vectors(REAL)
    lib.add("Ada Lovelace", clip_l, clip_g, pronouns="she",
            metadata={"base_model": "sdxl-base", "preset": "sdxl", "steps": "450",
                      "photo_sha256": "cd" * 32, "final_loss": "0.1",
                      "warnings": "face parsing was not usable (too small)"})
    assert "warnings" in lib.get("Ada Lovelace").metadata   # kept at home (the app shows it)
    path = lib.export("ada lovelace", tmp_path / "ada")
    assert path == tmp_path / "ada.safetensors" and path.is_file()
    assert path.stat().st_mode & 0o777 == 0o644            # readable by a loader running as another user
    state = safetensors.torch.load_file(str(path))
    assert sorted(state) == ["clip_g", "clip_l"]
    assert torch.equal(state["clip_l"], clip_l) and torch.equal(state["clip_g"], clip_g)
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
    assert meta["name"] == "Ada Lovelace" and meta["base_model"] == "sdxl-base"
    assert set(meta) == {"format", "format_version", "name", "pronouns", "token_count", "base_model",
                         "preset", "steps", "created", "photo_sha256"}   # no internal notes
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    other = IdentityLibrary(tmp_path / "other")
    imported = other.import_file(path, "Ada King", expected_dims=REAL)
    assert imported.name == "Ada King" and imported.pronouns == "she"  # pronouns from the file
    assert torch.equal(imported.clip_l, clip_l) and torch.equal(imported.clip_g, clip_g)
    for key in ("base_model", "preset", "steps", "photo_sha256", "created"):
        assert imported.metadata[key] == meta[key]
    assert imported.metadata["imported_from"] == "ada.safetensors"
    assert other.import_file(path, "Ada Lovelace", pronouns="they").pronouns == "they"
    # export overwrites an existing file atomically
    lib.add("Ada Lovelace", *vectors(REAL, seed=5), overwrite=True)
    lib.export("Ada Lovelace", path)
    assert torch.equal(safetensors.torch.load_file(str(path))["clip_l"], vectors(REAL, seed=5)[0])


def test_export_errors(lib, tmp_path):
    lib.add("Ada Lovelace", *vectors())
    with pytest.raises(LibraryError, match="not 'ada.pt'"):
        lib.export("Ada Lovelace", tmp_path / "ada.pt")
    with pytest.raises(LibraryError, match="folder not found"):
        lib.export("Ada Lovelace", tmp_path / "missing" / "ada.safetensors")
    with pytest.raises(IdentityNotFound):
        lib.export("Nobody", tmp_path / "x.safetensors")


def test_import_an_automatic1111_sdxl_embedding(lib, tmp_path):
    clip_l, clip_g = vectors(REAL, seed=4, scale=0.5)
    path = write_raw(tmp_path / "a1111.safetensors", {"clip_l": clip_l.half(), "clip_g": clip_g.half()})
    face = tmp_path / "face.png"
    Image.fromarray(face_array()).save(face)
    identity = lib.import_file(path, "Grace Hopper", pronouns="she", face=face,
                               expected_dims=REAL)
    assert identity.clip_l.dtype == torch.float32
    assert torch.equal(identity.clip_l, clip_l.half().float())
    assert identity.face_path is not None and identity.pronouns == "she"
    assert lib.get("grace hopper").metadata["imported_from"] == "a1111.safetensors"


def _torch_pickle(path):
    torch.save({"clip_l": torch.zeros(2, 32), "clip_g": torch.zeros(2, 64)}, path)


def _raw_pickle(path):
    path.write_bytes(pickle.dumps({"clip_l": [[0.0] * 32] * 2}))


@pytest.mark.parametrize("make, fragment", [
    (lambda p: None, "file not found"),
    (lambda p: p.mkdir(), "is not a file"),
    (lambda p: p.write_bytes(b"hello world, not a tensor file"), "not a valid .safetensors file"),
    (lambda p: write_raw(p, {"clip_l": torch.zeros(1, 32), "clip_g": torch.zeros(1, 64)}),
     "clip_l holds 1 vector; an identity needs exactly 2"),
    (lambda p: write_raw(p, {"clip_l": torch.zeros(8, 32), "clip_g": torch.zeros(8, 64)}),
     "clip_l holds 8 vectors"),
    (lambda p: write_raw(p, {"clip_l": torch.zeros(2, 768), "clip_g": torch.zeros(2, 1280)}),
     "clip_l has width 768 but this model's text encoder needs 32"),
    (lambda p: write_raw(p, {"clip_l": torch.zeros(2, 32), "clip_g": torch.zeros(2, 1280)}),
     "clip_g has width 1280 .* needs 64"),
    (lambda p: write_raw(p, {"clip_l": torch.zeros(2, 64), "clip_g": torch.zeros(2, 32)}),
     "clip_l and clip_g are swapped .*needs clip_l 32 and clip_g 64 wide"),
    (lambda p: write_raw(p, {"clip_l": torch.zeros(2, 32)}), "has no clip_g tensor"),
    (lambda p: write_raw(p, {"emb_params": torch.zeros(2, 768)}), "single-encoder SD 1.x/2.x"),
    (lambda p: write_raw(p, {"clip_l": torch.full((2, 32), float("nan")),
                             "clip_g": torch.zeros(2, 64)}), "NaN"),
    (_torch_pickle, "pickle"),
    (_raw_pickle, "pickle"),
], ids=["missing", "folder", "garbage", "one-row", "eight-rows", "wrong-width-l", "wrong-width-g", "swapped",
        "no-clip-g", "sd15", "nan", "torch-save", "raw-pickle"])
def test_import_refuses_bad_files(lib, tmp_path, make, fragment):
    path = tmp_path / "input.safetensors"
    make(path)
    with pytest.raises(LibraryError, match=fragment) as info:
        lib.import_file(path, "Ada Lovelace", expected_dims=TINY)
    assert "\n" not in str(info.value)
    assert entries_on_disk(lib) == []


def test_import_accepts_safetensors_whose_header_looks_like_a_pickle_opcode(lib, tmp_path):
    """A header length of 0x0280 makes a valid file start with bytes 80 02, a pickle's opening."""
    path = tmp_path / "lucky.safetensors"
    tensors = dict(zip(("clip_l", "clip_g"), vectors()))
    for pad in range(0, 700):
        write_raw(path, tensors, {"pad": "x" * pad})
        if path.read_bytes()[:2] == b"\x80\x02":
            break
    else:  # pragma: no cover
        pytest.fail("could not build the file")
    assert torch.equal(lib.import_file(path, "Ada Lovelace").clip_l, tensors["clip_l"])


@pytest.mark.parametrize("suffix", [".pt", ".bin", ".ckpt"])
def test_import_refuses_pickle_files_by_name_too(lib, tmp_path, suffix):
    path = tmp_path / f"learned_embeds{suffix}"
    _torch_pickle(path)
    with pytest.raises(LibraryError, match="pickle .*only .safetensors"):
        lib.import_file(path, "Ada Lovelace")
    path.write_bytes(b"\x00" * 64)  # unreadable, and named like a pickle
    with pytest.raises(LibraryError, match="pickle"):
        lib.import_file(path, "Ada Lovelace")
    assert entries_on_disk(lib) == []


def test_import_refuses_bad_name_and_existing_name(lib, tmp_path):
    path = write_raw(tmp_path / "x.safetensors", dict(zip(("clip_l", "clip_g"), vectors())))
    with pytest.raises(InvalidName):
        lib.import_file(path, "007")
    lib.import_file(path, "Ada Lovelace")
    with pytest.raises(IdentityExists):
        lib.import_file(path, "ada lovelace")
    assert lib.import_file(path, "ada lovelace", overwrite=True).name == "ada lovelace"


# ----------------------------------------------------------------------------- save_trained

def test_save_trained_builds_metadata_from_the_config(lib, tiny_config):
    clip_l, clip_g = vectors()
    trained = SimpleNamespace(clip_l=clip_l, clip_g=clip_g, face=Image.new("RGB", (512, 512), "red"),
                              photo_sha256="ef" * 32, steps=20, final_loss=0.123456789,
                              warnings=["the face is small"])
    identity = save_trained(lib, "Ada Lovelace", trained, pronouns="she", config=tiny_config)
    meta = lib.get("Ada Lovelace").metadata
    assert meta["base_model"] == tiny_config.model.pretrained == "tiny-sdxl"
    assert meta["preset"] == "tiny" and meta["steps"] == "20"
    assert meta["photo_sha256"] == "ef" * 32 and float(meta["final_loss"]) == pytest.approx(0.123457)
    assert meta["warnings"] == "the face is small"
    assert identity.face_path is not None and identity.pronouns == "she"
    with pytest.raises(IdentityExists):
        save_trained(lib, "Ada Lovelace", trained, pronouns="she", config=tiny_config)
    save_trained(lib, "Ada Lovelace", trained, pronouns="he", config=tiny_config, overwrite=True)
    assert lib.get("Ada Lovelace").pronouns == "he"
