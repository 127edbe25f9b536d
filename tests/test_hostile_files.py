"""Hostile and odd files: zip bombs, crafted JSON, huge requests, colliding and odd names.

Every case ends in one line naming the limit (``configs/limits.yaml``), or exit status 2 with one
``error:`` line on the command line, never a traceback, and with bounded memory. The bombs are
made in the test (:mod:`tests.hostile`) and are a few MB on disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from configs import ConfigError, load_config, load_limits
from pipelines.cli import main as generate_main
from pipelines.export import export_comic
from pipelines.project import (ComicRequest, EmbeddedIdentity, PanelSpec, Project, ProjectError,
                               identity_filename, load_project, lookup_identity)
from core.safe_read import ReadRefused, loads_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile import forged_count_zip, huge_png, saved_comic_zip, valid_project, zip_bomb  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LIMITS = load_limits()
MB = 1 << 20


def run_module(module: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def write_json(path: Path, data: object | str) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """5 GiB of zeros as project.json in a ~5 MB zip."""
    path = zip_bomb(tmp_path_factory.mktemp("bomb") / "comic.zip")
    assert path.stat().st_size < 6 * MB
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("project.json").file_size == 5 << 30
    return path


# ----------------------------------------------------------------------------- zip bombs


def test_a_zip_bomb_is_refused_with_bounded_memory(bomb):
    tracemalloc.start()
    try:
        with pytest.raises(ProjectError) as info:
            load_project(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert "json_bytes" in message and "5,368,709,120 bytes" in message and "\n" not in message
    assert peak < 100 * MB, f"peak {peak / MB:.1f} MB"


def test_a_zip_that_lies_about_its_size_is_read_only_up_to_the_cap(tmp_path):
    for declared in (100, LIMITS.json_bytes - 10):  # says small, inflates to 64 MiB
        path = zip_bomb(tmp_path / f"liar{declared}.zip", size=64 * MB, declared=declared)
        tracemalloc.start()
        try:
            with pytest.raises(ProjectError, match="cannot unpack"):
                load_project(path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 3 * LIMITS.json_bytes


def test_a_zip_with_too_many_entries_is_refused_before_parsing_its_directory(tmp_path):
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("project.json", json.dumps(valid_project()))
        for i in range(LIMITS.zip_members):
            archive.writestr(f"p/{i}", b"")
    with pytest.raises(ProjectError, match=r"zip entries is over the limit of 5000 \(limits.yaml: zip_members\)"):
        load_project(path)


def test_a_zip_whose_end_record_understates_its_entries_is_refused_by_the_real_count(tmp_path):
    """The end record claims 5 entries; the directory walk counts the real ones (issue 23)."""
    from core.safe_read import zip_entry_count

    path = forged_count_zip(tmp_path / "forged.zip", LIMITS.zip_members + 1)
    with open(path, "rb") as handle:
        assert zip_entry_count(handle) == 5
    with pytest.raises(ProjectError, match=r"more than 5,000 zip entries is over the limit of 5000 "
                                           r"\(limits.yaml: zip_members\)"):
        load_project(path)


def test_a_zip_directory_over_its_byte_limit_is_refused_before_it_is_walked(tmp_path):
    path = forged_count_zip(tmp_path / "big.zip", 40_000)   # ~2.2 MB of directory, 5 claimed
    with pytest.raises(ProjectError, match=r"zip directory is over the limit of 2,097,152 "
                                           r"\(limits.yaml: zip_directory_bytes\)"):
        load_project(path)


def test_saved_comic_pictures_are_read_within_their_limits(tmp_path):
    """A 1 GiB picture is refused from its declared size, a 9000x9000 one from its header; the
    project and the valid page still open (the comic is then drawn again by Generate)."""
    from core.pictures import PixelBudget, decode_picture
    from pipelines.export import read_saved_images

    page = tmp_path / "page.png"
    Image.new("RGB", (32, 24), "white").save(page)
    wide = saved_comic_zip(tmp_path / "wide.zip", {"panels/panel_01.png": huge_png(9000, 9000),
                                                   "pages/page_1.png": page.read_bytes()})
    saved = read_saved_images(wide, [0])
    assert saved.panels == {} and [p.size for p in saved.pages] == [(32, 24)]
    bomb = saved_comic_zip(tmp_path / "bomb.zip", bomb=("panels/panel_01.png", 1 << 30))
    assert bomb.stat().st_size < 2 << 20 and read_saved_images(bomb, [0]).panels == {}
    assert load_project(bomb).title == "A day"
    with pytest.raises(ReadRefused, match=r"x.png \(9000x9000 pixels\) is over the limit of "
                                          r"16,777,216 \(limits.yaml: picture_pixels\)"):
        decode_picture(huge_png(9000, 9000), "x.png", LIMITS)
    budget = PixelBudget(32 * 24 + 10)
    decode_picture(page.read_bytes(), "a.png", LIMITS, budget)
    assert budget.left == 10
    with pytest.raises(ReadRefused, match=r"saved_pixels"):
        decode_picture(page.read_bytes(), "b.png", LIMITS, budget)
    with pytest.raises(ReadRefused, match=r"^c.png: not a readable PNG picture"):
        decode_picture(b"GIF89a" + bytes(40), "c.png", LIMITS)


def test_the_cli_refuses_a_zip_bomb_in_one_line(bomb, tmp_path):
    done = run_module("pipelines", "generate", "--project", str(bomb), "--preset", "tiny",
                      "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "limits.yaml: json_bytes" in one_error_line(done.stderr)
    assert not (tmp_path / "out" / "comic.zip").exists()


# ----------------------------------------------------------------------------- crafted JSON


@pytest.mark.parametrize("raw, fragment", [
    ("[" * 100_000 + "]" * 100_000, "JSON nesting 100000 is over the limit of 32 (limits.yaml: json_depth)"),
    ("[" + "7" * 5000 + "]", "a 5,000-character number is over the limit of 40 (limits.yaml: json_number_chars)"),
    ("[1e400]", "the number 1e400 is too large (not a finite number)"),
    ("[-1e400]", "the number -1e400 is too large"),
    ('{"a": NaN}', "NaN is not allowed"),
    ('{"a": Infinity}', "Infinity is not allowed"),
    ("[1, 2", "is not valid JSON (line 1"),
    (b"\xff\xfe[]", "not UTF-8 text"),
])
def test_crafted_json_is_one_line(raw, fragment):
    with pytest.raises(ReadRefused) as info:
        loads_json(raw, "x.json", LIMITS)
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("field, token, fragment", [
    ("guidance_scale", "Infinity", "Infinity is not allowed"),
    ("guidance_scale", "NaN", "NaN is not allowed"),
    ("guidance_scale", "1e400", "not a finite number"),
    ("guidance_scale", "31", "guidance 31 is over the limit of 30.0 (limits.yaml: guidance)"),
    ("steps", "1000000000000", "steps 1000000000000 is over the limit of 500 (limits.yaml: steps)"),
    ("steps", "9" * 39, "(limits.yaml: steps)"),
    ("width", str(2**40), "width 1099511627776 for the 'tiny' preset is over the limit of 512 "
                          "(limits.yaml: max_side.tiny)"),
    ("height", "100", "height must be a positive multiple of 8 pixels, got '100'"),
    ("candidates", "17", "candidates 17 is over the limit of 16 (limits.yaml: candidates)"),
    ("seed", "-1", "the seed must be at least 0"),
    ("seed", str(2**32), "the seed 4294967296 is over the limit of 4,294,967,295 (limits.yaml: seed)"),
    ("format_version", '"1"', "'format_version' must be a whole number such as 1, got '1'"),
    ("title", json.dumps("t" * 201), "'title' (201 characters) is over the limit of 200 (limits.yaml: title_chars)"),
    ("model", json.dumps("m" * 100_000), "(limits.yaml: metadata_chars)"),
    ("title", json.dumps({"a": 1}), "'title' must be text"),
])
def test_bad_project_fields_are_one_line_each(tmp_path, field, token, fragment):
    data = valid_project()
    data[field] = "PLACEHOLDER"
    path = write_json(tmp_path / "project.json", json.dumps(data).replace('"PLACEHOLDER"', token))
    with pytest.raises(ProjectError) as info:
        load_project(path)
    message = str(info.value)
    assert fragment in message and "\n" not in message, message


def test_a_20000_panel_project_is_refused_before_reading_its_panels(tmp_path):
    data = valid_project(20_000)
    path = write_json(tmp_path / "project.json", data)
    with pytest.raises(ProjectError, match=r"20,000 panels, which is over the limit of 100 "
                                           r"\(limits.yaml: panels\)"):
        load_project(path)


@pytest.mark.parametrize("args, fragment", [
    (["--steps", str(10**12)], "steps 1000000000000 is over the limit of 500 (limits.yaml: steps)"),
    (["--width", str(2**40)], "width 1099511627776 for the 'tiny' preset is over the limit of 512"),
    (["--height", "4096"], "(limits.yaml: max_side.tiny)"),
    (["--guidance", "inf"], "guidance must be a finite number, got inf"),
    (["--guidance", "nan"], "guidance must be a finite number, got nan"),
    (["--candidates", "1000"], "(limits.yaml: candidates)"),
    (["--seed", str(2**40)], "(limits.yaml: seed)"),
])
def test_cli_settings_over_the_limits_are_one_line_before_any_model_loads(tmp_path, capsys, args,
                                                                          fragment):
    panels = write_json(tmp_path / "panels.json", [{"text": "A street.", "characters": []}])
    code = generate_main(["generate", "--panels", str(panels), "--preset", "tiny",
                          "--out", str(tmp_path / "out"), *args])
    captured = capsys.readouterr()
    assert code == 2 and fragment in one_error_line(captured.err), captured.err
    assert "loading" not in captured.err


def test_cli_refuses_20000_panels_and_deep_json_in_one_line(tmp_path, capsys):
    many = write_json(tmp_path / "many.json", [{"text": f"p {i}", "characters": []} for i in range(20_000)])
    deep = write_json(tmp_path / "deep.json", "[" * 50_000 + "]" * 50_000)
    for path, fragment in ((many, "(limits.yaml: panels)"), (deep, "(limits.yaml: json_depth)")):
        code = generate_main(["generate", "--panels", str(path), "--preset", "tiny",
                              "--out", str(tmp_path / "out")])
        assert code == 2 and fragment in one_error_line(capsys.readouterr().err)


def test_the_panel_table_applies_the_same_limits():
    from pipelines.panel_table import PanelTableError, panels_from_rows

    with pytest.raises(PanelTableError, match=r"101 panels, which is over the limit of 100"):
        panels_from_rows([[f"p {i}", "", ""] for i in range(101)])
    with pytest.raises(PanelTableError, match=r"^row 2: the seed 4294967296 is over the limit"):
        panels_from_rows([["a", "", ""], ["b", "", str(2**32)]])
    with pytest.raises(PanelTableError, match=r"row 1: the text \(1,001 characters\)"):
        panels_from_rows([["x" * 1001, "", ""]])


# ----------------------------------------------------------------------------- names


def _identity(name: str, seed: int) -> EmbeddedIdentity:
    g = torch.Generator().manual_seed(seed)
    return EmbeddedIdentity(name=name, clip_l=torch.randn(2, 32, generator=g),
                            clip_g=torch.randn(2, 64, generator=g), pronouns="he")


def test_non_latin_names_do_not_collide_in_comic_zip(tmp_path):
    cast = {"李小龙": _identity("李小龙", 1), "王菲": _identity("王菲", 2)}
    assert identity_filename("李小龙") != identity_filename("王菲")
    request = ComicRequest(panels=(PanelSpec("李小龙 and 王菲 meet.", ("李小龙", "王菲")),), seed=3)
    project = Project.from_request(request, load_config("tiny"), title="会面")
    image = Image.new("RGB", (64, 64))
    out = export_comic(tmp_path, project, [image], [image], identities=cast)
    with zipfile.ZipFile(out.zip) as archive:
        assert len([n for n in archive.namelist() if n.startswith("identities/")]) == 2
    loaded = load_project(out.zip)
    assert set(loaded.identities) == {"李小龙", "王菲"}
    for name, identity in cast.items():
        found = lookup_identity(loaded.identities, name)
        assert torch.equal(found.clip_l, identity.clip_l) and torch.equal(found.clip_g, identity.clip_g)


def test_full_width_look_alike_names_are_one_identity(tmp_path):
    from identities.library import IdentityExists, IdentityLibrary
    from identities.names import name_key, validate_name

    assert validate_name("Ａｄａ Lovelace") == "Ada Lovelace"
    assert name_key("Ａｄａ  LOVELACE") == name_key("Ada Lovelace")
    library = IdentityLibrary(tmp_path / "lib")
    library.add("Ada Lovelace", torch.zeros(2, 32), torch.zeros(2, 64))
    assert library.get("Ａｄａ Lovelace").name == "Ada Lovelace"
    with pytest.raises(IdentityExists):
        library.add("Ａｄａ Lovelace", torch.zeros(2, 32), torch.zeros(2, 64))


def test_direction_and_control_characters_are_never_echoed_raw(tmp_path, capsys):
    from safetensors.torch import save

    blob = save({"clip_l": torch.zeros(2, 32), "clip_g": torch.zeros(2, 64)},
                metadata={"name": "Ada\u202eecalevoL\nX", "pronouns": ""})
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("project.json", json.dumps(valid_project()))
        archive.writestr("identities/evil\u202e.safetensors", blob)
    with pytest.raises(ProjectError) as info:
        load_project(path)
    message = str(info.value)
    assert "\u202e" not in message and "\n" not in message and "\\u202e" in message
    code = generate_main(["generate", "--project", str(path), "--preset", "tiny",
                          "--out", str(tmp_path / "out")])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "\u202e" not in line and "\\u202e" in line


def test_identity_files_in_a_zip_must_hold_finite_vectors(tmp_path):
    from safetensors.torch import save

    for clip_l, shape in ((torch.full((2, 32), float("nan")), "(2, 32)"),
                          (torch.zeros(3, 32), "(3, 32)")):
        path = tmp_path / "bad.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("project.json", json.dumps(valid_project()))
            archive.writestr(identity_filename("Ada Lovelace"),
                             save({"clip_l": clip_l, "clip_g": torch.zeros(2, 64)},
                                  metadata={"name": "Ada Lovelace"}))
        with pytest.raises(ProjectError, match=r"clip_l must be two rows of finite numbers") as info:
            load_project(path)
        assert f"torch.float32 {shape}" in str(info.value)


def test_imported_metadata_is_checked(tmp_path):
    from safetensors.torch import save_file

    from identities.library import FORMAT, IdentityLibrary, LibraryError

    library = IdentityLibrary(tmp_path / "lib")
    for value, fragment in (("2026" * 25_000, "(limits.yaml: metadata_chars)"),
                            ("<img src=x onerror=alert(1)>", "markup and control characters")):
        path = tmp_path / "in.safetensors"
        save_file({"clip_l": torch.zeros(2, 32), "clip_g": torch.zeros(2, 64)}, str(path),
                  metadata={"format": FORMAT, "name": "Ada Lovelace", "created": value})
        with pytest.raises(LibraryError) as info:
            library.import_file(path, "Ada Lovelace")
        assert fragment in str(info.value) and "metadata field 'created'" in str(info.value)
    assert library.list() == []
    big = tmp_path / "big.safetensors"
    save_file({"clip_l": torch.zeros(2, 32), "clip_g": torch.zeros(2, 300_000)}, str(big))
    with pytest.raises(LibraryError, match=r"limits.yaml: identity_bytes"):
        library.import_file(big, "Ada Lovelace")


# ----------------------------------------------------------------------------- other CLIs


def test_llm_and_stableidentity_clis_apply_the_limits(tmp_path, capsys):
    import io

    from llm.__main__ import main as llm_main

    story = tmp_path / "story.txt"
    story.write_bytes(b"Ada Lovelace walks. " * 20_000)  # 400 KB
    for source, stdin in ((str(story), None), ("-", io.StringIO("Ada walks. " * 30_000))):
        err = io.StringIO()
        code = llm_main(["parse", "--story-file", source, "--character", "Ada Lovelace:she",
                         "--offline"], stdin=stdin, stdout=io.StringIO(), stderr=err)
        assert code == 2 and "(limits.yaml: story_bytes)" in one_error_line(err.getvalue())
    photo = tmp_path / "photo.png"
    Image.new("RGB", (64, 64)).save(photo)
    from stableidentity.cli import main as si_main

    for args, fragment in ((["--steps", "5001"], "--steps 5001 is over the limit of 5000"),
                           (["--seed", str(2**40)], "(limits.yaml: seed)"),
                           (["--name", "A" * 300], "the name is too long")):
        argv = ["train", "--image", str(photo), "--library", str(tmp_path / "lib"), *args]
        if "--name" not in args:
            argv += ["--name", "Ada Lovelace"]
        assert si_main(argv) == 2 and fragment in one_error_line(capsys.readouterr().err)
    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG" + bytes(LIMITS.photo_bytes))
    assert si_main(["train", "--image", str(huge), "--name", "Ada Lovelace",
                    "--library", str(tmp_path / "lib")]) == 2
    assert "(limits.yaml: photo_bytes)" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "lib").exists()


def test_the_limits_table_is_complete_and_checked(tmp_path):
    text = (ROOT / "configs" / "limits.yaml").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line and not line.startswith("#") and ":" in line:
            assert "#" in line, f"undocumented key: {line}"
    assert LIMITS.side_limit("sdxl") == 2048 and LIMITS.side_limit("mine") == 2048
    bad = tmp_path / "limits.yaml"
    bad.write_text(text.replace("steps: 500", "steps: .inf"), encoding="utf-8")
    with pytest.raises(ConfigError, match="'steps' must be a positive whole number"):
        load_limits(bad)
    bad.write_text(text.replace("panels: 100", "panelz: 100"), encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown key 'panelz'"):
        load_limits(bad)
