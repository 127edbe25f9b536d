"""Property-based tests (Hypothesis): random and mutated project.json, comic.zip and safetensors
bytes through the readers. Each reader returns, or raises the app's one-line error
(ProjectError / ReadRefused), never another exception; the JSON depth scan agrees with the parser.

Examples are bounded (``max_examples``, small inputs) so the file runs in well under 30 s.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from configs import load_limits
from core.safe_read import ReadRefused, json_depth, loads_json
from pipelines.export import read_saved_images
from pipelines.project import (EmbeddedIdentity, ProjectError, identity_bytes, identity_filename,
                               identity_from_bytes, load_project)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile import valid_project  # noqa: E402

LIMITS = load_limits()
SETTINGS = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "blue").save(buffer, format="PNG")
    return buffer.getvalue()


PROJECT = json.dumps(valid_project(1)).encode("utf-8")
IDENTITY = identity_bytes(EmbeddedIdentity(name="Ada Lovelace", clip_l=torch.zeros(2, 8),
                                           clip_g=torch.zeros(2, 12)))


def _comic_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("project.json", PROJECT)
        archive.writestr("panels/panel_01.png", _png())
        archive.writestr("pages/page_1.png", _png())
        archive.writestr(identity_filename("Ada Lovelace"), IDENTITY)
    return buffer.getvalue()


COMIC_ZIP = _comic_zip()


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with a few random edits: byte changes, insertions, deletions, truncation."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["set", "insert", "delete", "truncate", "repeat"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete" and data:
            del data[at:at + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "repeat" and data:
            piece = bytes(data[at:at + draw(st.integers(1, 8))])
            data[at:at] = piece * draw(st.integers(1, 200))
    return bytes(data)


def _one_line(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(alphabet='ab"\\[]{}é\n', max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.text(alphabet='k"\\[{', max_size=4), inner, max_size=4),
    max_leaves=30)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@SETTINGS
@given(json_values, st.booleans())
def test_the_linear_depth_scan_agrees_with_the_parser(value, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert json_depth(text) == _depth(value)
    assert json_depth(text.encode("utf-8")) == _depth(value)


@SETTINGS
@given(st.one_of(mutated(PROJECT), st.binary(max_size=300)))
def test_mutated_project_json_is_read_or_refused_in_one_line(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("p") / "project.json"
    path.write_bytes(data)
    try:
        project = load_project(path)
    except ProjectError as exc:
        _one_line(str(exc))
        return
    assert len(project.request.panels) <= LIMITS.panels
    loads_json(project.to_json(), "saved", LIMITS)  # what it saves is valid, bounded JSON


@SETTINGS
@given(st.one_of(mutated(COMIC_ZIP), st.binary(max_size=300)))
def test_mutated_comic_zip_is_opened_or_refused_in_one_line(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("z") / "comic.zip"
    path.write_bytes(data)
    try:
        project = load_project(path)
    except ProjectError as exc:
        _one_line(str(exc))
    else:
        assert len(project.identities) <= LIMITS.cast
    saved = read_saved_images(path, [0])  # never raises: damaged pictures are skipped
    for picture in [*saved.panels.values(), *saved.pages]:
        assert picture.mode == "RGB" and picture.width * picture.height <= LIMITS.picture_pixels


@SETTINGS
@given(mutated(IDENTITY))
def test_mutated_safetensors_is_read_or_refused_in_one_line(data):
    try:
        identity = identity_from_bytes(data, "ada.safetensors", LIMITS)
    except ProjectError as exc:
        _one_line(str(exc))
        return
    assert identity.clip_l.shape[0] == 2 and bool(identity.clip_l.isfinite().all())


@SETTINGS
@given(st.binary(max_size=2000))
def test_random_bytes_as_json_are_parsed_or_refused_in_one_line(data):
    try:
        loads_json(data, "x.json", LIMITS)
    except ReadRefused as exc:
        _one_line(str(exc))
