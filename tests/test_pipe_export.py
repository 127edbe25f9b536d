"""Export: page PNGs, one multi-page PDF, project.json and a zip that regenerates the comic."""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.export import ExportError, ensure_writable, export_comic, pdf_bytes
from pipelines.generation import draw_comic, panel_generator
from pipelines.project import (APP_VERSION, ComicRequest, PanelSpec, Project, ProjectError, identity_filename,
                               load_project, save_project)
from identities.library import Identity


def person(name: str, seed: int) -> Identity:
    g = torch.Generator().manual_seed(seed)
    return Identity(name=name, pronouns="", clip_l=torch.randn(2, 32, generator=g) * 0.05,
                    clip_g=torch.randn(2, 64, generator=g) * 0.05, metadata={}, folder=Path("."))


CAST = {"Ada Lovelace": person("Ada Lovelace", 1), "Alan Turing": person("Alan Turing", 2)}
PANELS = (PanelSpec("Ada Lovelace and Alan Turing meet.", ("Ada Lovelace", "Alan Turing")),
          PanelSpec("\"Look!\" Ada Lovelace's voice rang out.", ("Ada Lovelace",)),
          PanelSpec("A quiet street.", ()),
          PanelSpec("Alan Turing waves.", ("Alan Turing",), seed=500))


@pytest.fixture(scope="module")
def generator(tiny_components):
    return panel_generator(tiny_components)


@pytest.fixture(scope="module")
def comic(generator):
    request = ComicRequest(panels=PANELS, style="watercolor", keywords=("vivid colors",), seed=21,
                           candidates=2)
    return draw_comic(generator, request, CAST, title="Meeting", choose=lambda r: 1)


def test_project_records_everything_that_decides_the_pixels(comic, tiny_config):
    data = comic.project.to_dict()
    assert data["format"] == "comic-identity-project" and data["app_version"] == APP_VERSION
    assert data["preset"] == "tiny" and data["sampler"] == tiny_config.generation.sampler
    assert data["cast"] == ["Ada Lovelace", "Alan Turing"] and data["title"] == "Meeting"
    assert data["style"] == "watercolor" and data["keywords"] == ["vivid colors"]
    assert data["negative_prompt"] == tiny_config.generation.negative_prompt
    assert (data["steps"], data["guidance_scale"], data["width"], data["height"], data["candidates"]) == \
        (tiny_config.generation.steps, 8.5, 64, 64, 2)
    assert [p["seed"] for p in data["panels"]] == [21, 22, 23, 500]
    assert [p["candidate"] for p in data["panels"]] == [1, 1, 1, 1]
    assert "v1*" not in json.dumps(data)


def test_project_json_round_trip(comic, tmp_path):
    path = save_project(comic.project, tmp_path)
    loaded = load_project(path)
    assert loaded == comic.project and load_project(tmp_path) == comic.project
    assert loaded.identities == {}


def test_export_writes_every_file(comic, tmp_path):
    from pypdf import PdfReader

    out = export_comic(tmp_path / "out", comic.project, comic.panels, comic.pages,
                       candidates=comic.candidates(), identities=CAST)
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["comic.cbz", "comic.pdf", "comic.zip", "page_1.png", "panel_01.png", "panel_01_c1.png",
                     "panel_02.png", "panel_02_c1.png", "panel_03.png", "panel_03_c1.png",
                     "panel_04.png", "panel_04_c1.png", "project.json"]
    for path, image in zip(out.panels, comic.panels):
        assert np.array_equal(np.asarray(Image.open(path)), np.asarray(image))
    assert len(PdfReader(str(out.pdf)).pages) == len(comic.pages) == 1
    with zipfile.ZipFile(out.zip) as archive:
        listed = set(archive.namelist())
        modes = {info.external_attr >> 16 for info in archive.infolist()}
    # readable by a loader running as another user (mkstemp's and writestr's default is 0600)
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "out").iterdir()} == {0o644}
    assert modes == {0o644}
    assert {"project.json", "panels/panel_01.png", "panels/panel_04_c1.png", "pages/page_1.png",
            identity_filename("Ada Lovelace"), identity_filename("Alan Turing")} <= listed
    assert identity_filename("Ada Lovelace").startswith("identities/ada_lovelace-")
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left behind


def test_pdf_has_one_page_per_comic_page(tmp_path):
    from pypdf import PdfReader

    pages = [Image.new("RGB", (300, 400), c) for c in ("red", "green", "blue")]
    (tmp_path / "c.pdf").write_bytes(pdf_bytes(pages))
    assert len(PdfReader(str(tmp_path / "c.pdf")).pages) == 3


def test_a_long_story_exports_several_pages(generator, tmp_path):
    from pypdf import PdfReader

    request = ComicRequest(panels=tuple(PanelSpec(f"scene {i}") for i in range(8)), steps=1)
    comic = draw_comic(generator, request)
    out = export_comic(tmp_path, comic.project, comic.panels, comic.pages)
    assert [p.name for p in out.pages] == ["page_1.png", "page_2.png"]
    assert len(PdfReader(str(out.pdf)).pages) == 2


def test_the_zip_regenerates_the_same_comic(comic, generator, tmp_path):
    out = export_comic(tmp_path, comic.project, comic.panels, comic.pages,
                       candidates=comic.candidates(), identities=CAST)
    project = load_project(out.zip)
    assert project == comic.project
    assert set(project.identities) == {"Ada Lovelace", "Alan Turing"}
    for name, identity in project.identities.items():
        assert torch.equal(identity.clip_l, CAST[name].clip_l) and torch.equal(identity.clip_g, CAST[name].clip_g)
    again = draw_comic(generator, project.request, project.identities, title=project.title,
                       choices=project.choices)
    assert again.project == comic.project
    for a, b in zip(again.panels, comic.panels):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert np.array_equal(np.asarray(again.pages[0]), np.asarray(comic.pages[0]))


def test_bad_project_files_fail_with_one_line(tmp_path, comic):
    with pytest.raises(ProjectError, match="not found"):
        load_project(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ProjectError, match=r"not valid JSON \(line 1"):
        load_project(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something"}))
    with pytest.raises(ProjectError, match="not a comic project"):
        load_project(tmp_path / "other.json")
    data = comic.project.to_dict()
    data["panels"][0]["characters"] = "Ada"
    (tmp_path / "p.json").write_text(json.dumps(data))
    with pytest.raises(ProjectError, match="panel 1: 'characters'"):
        load_project(tmp_path / "p.json")
    data = dict(comic.project.to_dict(), format_version=99)
    (tmp_path / "new.json").write_text(json.dumps(data))
    with pytest.raises(ProjectError, match="newer"):
        load_project(tmp_path / "new.json")


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="cannot write to output folder"):
        ensure_writable(blocker / "sub")
    assert ensure_writable(tmp_path / "a" / "b").is_dir()


def test_project_from_request_fills_defaults(tiny_config):
    project = Project.from_request(ComicRequest(panels=(PanelSpec("x"), PanelSpec("y"))), tiny_config)
    assert project.request.steps == tiny_config.generation.steps
    assert [p.seed for p in project.request.panels] == [0, 1] and project.choices == (0, 0)
    with pytest.raises(ValueError):
        Project.from_request(ComicRequest(panels=(PanelSpec("x"),)), tiny_config, choices=[0, 1])
    assert replace(project, title="t").to_dict()["title"] == "t"
