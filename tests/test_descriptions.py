"""Character descriptions: stored in the library and the project, overridable per comic, and put
into every panel prompt naming the character (tiny preset, real library and generator)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from identities.catalog import IdentityCatalog, ReadOnlyIdentity
from identities.library import IdentityLibrary
from identities.names import InvalidDescription, clean_description
from pipelines.descriptions import describe, description_of
from pipelines.project import ComicRequest, PanelSpec, Project, ProjectError

SCARF = "short grey hair, red scarf"


# ----------------------------------------------------------------------------- the text

@pytest.mark.parametrize("text, characters, expected", [
    ("Ada Lovelace waves.", ("Ada Lovelace",), f"Ada Lovelace ({SCARF}) waves."),
    ("ada  lovelace waves.", ("Ada Lovelace",), f"ada  lovelace ({SCARF}) waves."),
    ("Ada Lovelace's cat sleeps.", ("Ada Lovelace",), f"Ada Lovelace's ({SCARF}) cat sleeps."),
    ("Ada Lovelace meets Alan Turing. Ada Lovelace smiles.", ("Ada Lovelace", "Alan Turing"),
     f"Ada Lovelace ({SCARF}) meets Alan Turing (bald). Ada Lovelace smiles."),
    ("She waves.", ("Ada Lovelace",), "She waves."),                      # not named: nothing
    ("A quiet street.", (), "A quiet street."),
    (f"Ada Lovelace, {SCARF}, waves.", ("Ada Lovelace",), f"Ada Lovelace, {SCARF}, waves."),
    ("Ada Lovelace-Byron waves.", ("Ada Lovelace",), "Ada Lovelace-Byron waves."),
])
def test_describe_puts_each_description_after_the_first_mention(text, characters, expected):
    descriptions = {"ADA LOVELACE": SCARF, "Alan Turing": "bald", "Grace Hopper": "navy uniform"}
    assert describe(text, characters, descriptions) == expected


def test_description_lookup_and_cleaning():
    assert description_of({"Ada  Lovelace": " red\nscarf "}, "ada lovelace") == "red scarf"
    assert description_of({}, "Ada") == ""
    assert clean_description("  short grey\n hair ") == "short grey hair"
    assert clean_description(None) == "" and clean_description("   ") == ""
    with pytest.raises(InvalidDescription, match=r"over the limit of 200 \(limits.yaml: description_chars\)"):
        clean_description("x" * 201)
    with pytest.raises(InvalidDescription, match="markup"):
        clean_description("a <b>red</b> scarf")
    with pytest.raises(InvalidDescription, match="must be text"):
        clean_description(3)


# ----------------------------------------------------------------------------- the library

def _add(library: IdentityLibrary, name: str) -> None:
    library.add(name, torch.randn(2, 32), torch.randn(2, 64), face=np.zeros((64, 64, 3), np.uint8))


def test_library_stores_exports_and_clears_a_description(tmp_path):
    library = IdentityLibrary(tmp_path / "lib")
    _add(library, "Ada Lovelace")
    before = library.get("Ada Lovelace")
    described = library.describe("ada lovelace", f"  {SCARF}\n")
    assert described.description == SCARF
    again = IdentityLibrary(tmp_path / "lib").get("Ada Lovelace")  # read back from disk
    assert again.description == SCARF and again.folder == before.folder
    assert torch.equal(again.clip_l, before.clip_l) and again.metadata["created"] == before.metadata["created"]
    exported = library.export("Ada Lovelace", tmp_path / "ada.safetensors")
    with safe_open(str(exported), framework="pt") as handle:
        assert handle.metadata()["description"] == SCARF
    imported = IdentityLibrary(tmp_path / "other").import_file(exported, "Ada Lovelace")
    assert imported.description == SCARF
    assert library.describe("Ada Lovelace", "").description == ""
    assert "description" not in library.get("Ada Lovelace").metadata
    with pytest.raises(InvalidDescription):
        library.describe("Ada Lovelace", "x" * 500)
    assert library.get("Ada Lovelace").description == ""  # the refused one left nothing


def test_examples_are_described_per_comic_only(tmp_path):
    _add(IdentityLibrary(tmp_path / "examples"), "Alan Turing")
    catalog = IdentityCatalog(IdentityLibrary(tmp_path / "mine"), tmp_path / "examples")
    with pytest.raises(ReadOnlyIdentity, match="for this comic"):
        catalog.describe("Alan Turing", "bald")


# ----------------------------------------------------------------------------- the project

def test_project_json_keeps_descriptions_and_refuses_bad_ones(tiny_config):
    request = ComicRequest(panels=(PanelSpec("Ada Lovelace waves.", ("Ada Lovelace",)),),
                           descriptions=(("Ada Lovelace", SCARF), ("Alan Turing", "")))
    project = Project.from_request(request, tiny_config)
    data = json.loads(project.to_json())
    assert data["descriptions"] == {"Ada Lovelace": SCARF}
    loaded = Project.from_dict(data)
    assert loaded.request.description_map == {"Ada Lovelace": SCARF} and loaded == project
    del data["descriptions"]  # a project from before descriptions still opens
    assert Project.from_dict(data).request.descriptions == ()
    for bad, message in (([SCARF], "must map"), ({"Ada Lovelace": "<b>"}, "markup"),
                         ({"Ada Lovelace": "x" * 300}, "description_chars"),
                         ({"Ada Lovelace": 7}, "must be text")):
        with pytest.raises(ProjectError, match=message):
            Project.from_dict({**data, "descriptions": bad})


# ----------------------------------------------------------------------------- the prompt

def _tiny_identity(studio, tiny_components, name: str, folder=None) -> None:
    width = (tiny_components.text_encoder.get_input_embeddings().embedding_dim,
             tiny_components.text_encoder_2.get_input_embeddings().embedding_dim)
    library = IdentityLibrary(folder) if folder is not None else studio.catalog.library
    library.add(name, torch.randn(2, width[0]) * 0.01, torch.randn(2, width[1]) * 0.01,
                face=np.full((64, 64, 3), 128, np.uint8))


def test_a_library_description_reaches_the_prompt_and_a_comic_override_wins(studio, tiny_components,
                                                                            tmp_path):
    from session import Session

    _tiny_identity(studio, tiny_components, "Ada Lovelace")
    _tiny_identity(studio, tiny_components, "Alan Turing", folder=tmp_path / "examples")
    session = Session()
    studio.add_to_cast(session, "Ada Lovelace")
    studio.add_to_cast(session, "Alan Turing")
    settings = studio.default_settings()
    rows = [["Ada Lovelace waves at Alan Turing.", "Ada Lovelace, Alan Turing", "", ""],
            ["A quiet street.", "", "", ""]]

    def prompts():
        request = studio.build_request(session, rows, settings)
        _, prepared = studio.generator().prepare(request, studio.identities_for(
            session, request.cast_names()))
        return request, [p.prompt for p in prepared], [p.bound_prompt for p in prepared]

    request, plain, _ = prompts()
    assert request.descriptions == () and "(" not in plain[0]

    line = studio.describe_identity(session, "ada lovelace", SCARF)
    assert "saved in the library" in line
    assert IdentityLibrary(studio.config.library_dir).get("Ada Lovelace").description == SCARF
    request, described, bound = prompts()
    assert request.description_map == {"Ada Lovelace": SCARF}
    assert f"Ada Lovelace ({SCARF}) waves" in described[0] and described[1] == plain[1]
    assert SCARF in bound[0] and "Ada Lovelace" not in bound[0]  # the name became signal words

    line = studio.describe_identity(session, "Alan Turing", "bald, tweed jacket")  # an example
    assert "for this comic only" in line
    line = studio.describe_identity(session, "Ada Lovelace", "yellow raincoat", comic_only=True)
    request, described, _ = prompts()
    assert "Ada Lovelace (yellow raincoat)" in described[0]
    assert "Alan Turing (bald, tweed jacket)" in described[0]
    assert studio.description(session, "Ada Lovelace") == ("yellow raincoat", True)
    assert studio.description(Session(), "Ada Lovelace") == (SCARF, False)  # library unchanged
    assert "This comic" in studio.identity_details(session, "Ada Lovelace")[1]

    with pytest.raises(InvalidDescription):
        studio.describe_identity(session, "Ada Lovelace", "a <script>")

    # the project keeps what it was drawn with; opening it makes those this comic's descriptions
    from pipelines.project import save_project

    project = Project.from_request(studio.build_request(session, rows, settings), studio.config,
                                   cast=session.cast)
    path = save_project(project, tmp_path / "project.json")
    reopened = Session()
    studio.open_project(reopened, str(path))
    assert reopened.descriptions == {"Ada Lovelace": "yellow raincoat",
                                     "Alan Turing": "bald, tweed jacket"}
    assert studio.build_request(reopened, rows, settings).descriptions == project.request.descriptions


def test_the_face_pass_prompt_carries_the_description():
    from pipelines.face_pass import FACE_PROMPT

    text = describe(FACE_PROMPT.format("Ada Lovelace"), ["Ada Lovelace"], {"Ada Lovelace": SCARF})
    assert text == f"a close-up portrait of Ada Lovelace ({SCARF}), detailed face"


def test_with_per_character_prompts_a_description_is_encoded_in_its_character_prompt_only(
        studio, tiny_components, tmp_path):
    """Regional panel, two characters: Ada's description is in Ada's own prompt, not in Alan's or
    the background (so it cannot dress the other character)."""
    from session import Session

    _tiny_identity(studio, tiny_components, "Ada Lovelace")
    _tiny_identity(studio, tiny_components, "Alan Turing")
    session = Session()
    studio.add_to_cast(session, "Ada Lovelace")
    studio.add_to_cast(session, "Alan Turing")
    studio.describe_identity(session, "Ada Lovelace", SCARF)
    rows = [["Ada Lovelace waves at Alan Turing.", "Ada Lovelace, Alan Turing", "", ""]]
    request = studio.build_request(session, rows, studio.default_settings())
    assert request.regional and studio.config.generation.character_prompts
    _, (panel,) = studio.generator().prepare(request, studio.identities_for(session, request.cast_names()))
    ada, alan = panel.character_prompts
    assert SCARF in ada and SCARF not in alan and SCARF not in panel.background_prompt
    assert f"Ada Lovelace ({SCARF})" in panel.prompt  # the prompt shown on the card
