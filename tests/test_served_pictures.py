"""Library pictures shown from a served copy (issue 23, item 5): the data root can be anywhere,
Gradio serves only picture copies from the downloads folder. The end-to-end check (a server whose
library is outside its working and temp folders) is in tests/test_store_rebuild.py."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from core.files import served_copy


def test_a_served_copy_is_reused_until_the_picture_changes(tmp_path):
    face = tmp_path / "library" / "Ada" / "face.png"
    face.parent.mkdir(parents=True)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(face)
    served = tmp_path / "downloads" / "pictures"
    first = served_copy(face, served)
    assert first.is_relative_to(served) and first.name == "face.png"
    assert first.read_bytes() == face.read_bytes() and served_copy(face, served) == first
    Image.new("RGB", (8, 8), (9, 9, 9)).save(face)
    os.utime(face, ns=(1, 1))  # a different time for sure
    second = served_copy(face, served)
    assert second != first and second.read_bytes() == face.read_bytes()


@pytest.mark.parametrize("name", ["ada.safetensors", "comic-identity.sqlite3", "meta.json"])
def test_only_pictures_are_copied(tmp_path, name):
    other = tmp_path / name
    other.write_bytes(b"secret")
    with pytest.raises(ValueError, match="not a picture"):
        served_copy(other, tmp_path / "served")
    assert not (tmp_path / "served").exists()


def test_the_studio_shows_a_placeholder_for_a_missing_picture(tmp_path, tiny_config):
    from session import Studio

    studio = Studio(tiny_config, None, examples_dir=None, export_root=tmp_path / "downloads",
                    data_root=tmp_path / "data")
    try:
        assert studio.served_picture(None) == studio.placeholder_face()
        assert studio.served_picture(tmp_path / "gone.png") == studio.placeholder_face()
    finally:
        studio.shutdown()
