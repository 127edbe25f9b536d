"""bench/eval_identity.py: end to end on the tiny preset, the CLIP path with a tiny CLIP, and the
scoring of real faces through ``evaluate`` with a stand-in generator."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from bench import eval_identity as ev


@pytest.fixture(scope="module")
def aligned_astronaut():
    """The astronaut's FFHQ-aligned 512 crop, as the library stores ``face.png``."""
    import cv2
    from skimage import data

    from faces.face_detection import DlibFaceDetector
    from faces.similarity import FFHQ_TEMPLATE_512

    photo = data.astronaut()
    landmarks = DlibFaceDetector().detect(photo)[0].landmarks
    matrix, _ = cv2.estimateAffinePartial2D(landmarks, FFHQ_TEMPLATE_512, method=cv2.LMEDS)
    return Image.fromarray(cv2.warpAffine(photo, matrix, (512, 512), borderMode=cv2.BORDER_REFLECT))


@pytest.fixture(scope="module")
def tiny_library(tmp_path_factory, tiny_components, aligned_astronaut):
    from identities.library import IdentityLibrary

    d1 = tiny_components.text_encoder.get_input_embeddings().embedding_dim
    d2 = tiny_components.text_encoder_2.get_input_embeddings().embedding_dim
    library = IdentityLibrary(tmp_path_factory.mktemp("library"))
    gen = torch.Generator().manual_seed(0)
    library.add("Eileen Collins", 0.02 * torch.randn(2, d1, generator=gen),
                0.02 * torch.randn(2, d2, generator=gen), face=aligned_astronaut)
    library.add("Grace Hopper", 0.02 * torch.randn(2, d1, generator=gen),
                0.02 * torch.randn(2, d2, generator=gen))  # no face.png
    return library.root


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A random tiny CLIPModel + processor saved to a folder (stands in for the hub weights)."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from models.clip_tokenizer import build_clip_tokenizer

    folder = tmp_path_factory.mktemp("clip")
    small = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4)
    config = CLIPConfig(text_config=dict(small, vocab_size=49408, max_position_embeddings=77),
                        vision_config=dict(small, image_size=32, patch_size=8), projection_dim=16)
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                 crop_size={"height": 32, "width": 32}),
                              tokenizer=build_clip_tokenizer())
    processor.save_pretrained(folder)
    return folder


def test_shipped_prompts_have_one_placeholder_each():
    prompts = ev.read_prompts(ev.DEFAULT_PROMPTS)
    assert 38 <= len(prompts) <= 45
    assert all(p.count("{}") == 1 for p in prompts)
    assert len(set(prompts)) == len(prompts)
    assert ev.fill("a photo of {} wearing a red scarf", "Ada Lovelace") == \
        "a photo of Ada Lovelace wearing a red scarf"


def test_bad_prompt_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "p.txt"
    bad.write_text("# only a comment\na photo of a cat\n")
    with pytest.raises(ev.EvalError, match="exactly once"):
        ev.read_prompts(bad)
    with pytest.raises(ev.EvalError, match="cannot read"):
        ev.read_prompts(tmp_path / "missing.txt")


def test_tiny_run_completes_with_library_candidates_and_clip(tiny_library, tiny_clip, tmp_path, capsys):
    out = tmp_path / "eval.json"
    code = ev.main(["--preset", "tiny", "--library", str(tiny_library), "--limit", "2",
                    "--candidates", "2", "--clip-model", str(tiny_clip), "--json", str(out),
                    "--save-images", str(tmp_path / "images"), "--quiet"])
    assert code == 0
    payload = json.loads(out.read_text())
    rows = {row["identity"]: row for row in payload["rows"]}
    assert set(rows) == {"Eileen Collins", "Grace Hopper", "ALL"}
    assert rows["ALL"]["panels"] == 4 and rows["ALL"]["images"] == 8
    assert rows["Eileen Collins"]["face_rate"] == 0.0  # tiny draws noise
    assert rows["Eileen Collins"]["face_sim"] is None
    assert -1.0 <= rows["ALL"]["clip_t"] <= 1.0
    assert "best_face_sim" in rows["ALL"]
    assert payload["settings"]["clip_model"] == str(tiny_clip)
    assert any("Grace Hopper: no reference face" in note for note in payload["notes"])
    assert len(payload["panels"]) == 4
    assert {c["seed"] for c in payload["panels"][0]["candidates"]} == {0, 1_000_000}
    assert len(list((tmp_path / "images").glob("*.png"))) == 8
    printed = capsys.readouterr().out
    assert "face_rate" in printed and "Eileen Collins" in printed


def test_tiny_run_with_empty_library_uses_demo_identity(tmp_path, capsys):
    code = ev.main(["--preset", "tiny", "--library", str(tmp_path / "empty"), "--limit", "1",
                    "--clip-model", "none", "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert ev.DEMO_NAME in out and "demo identity" in out and "CLIP score skipped" in out


def test_unknown_identity_exits_with_message(tiny_library, capsys):
    assert ev.main(["--preset", "tiny", "--library", str(tiny_library), "--identities", "Nobody Here",
                    "--quiet"]) == 2
    assert "Nobody Here" in capsys.readouterr().err


class PhotoGenerator:
    """Stands in for PanelGenerator: 'draws' fixed photos, two candidates per panel."""

    def __init__(self, photos):
        self.photos = photos  # candidate index -> image
        self.requests = []

    def generate(self, request, identities):
        from pipelines.generation import PanelResult

        self.requests.append((request, identities))
        for index, panel in enumerate(request.panels):
            for candidate, photo in enumerate(self.photos):
                yield PanelResult(index=index, candidate=candidate, image=Image.fromarray(photo),
                                  prompt=panel.text, bound_prompt=panel.text, negative_prompt="",
                                  seed=request.seed + index, characters=panel.characters, seconds=0.1)


def test_evaluate_scores_real_faces_and_picks_best(aligned_astronaut, grace_hopper, astronaut):
    from configs import load_config
    from faces.similarity import FaceSimilarity

    sim = FaceSimilarity.from_config(load_config("tiny").face)
    identity = ev.EvalIdentity("Eileen Collins", torch.zeros(2, 32), torch.zeros(2, 64), aligned_astronaut)
    generator = PhotoGenerator([np.zeros((64, 64, 3), np.uint8), grace_hopper, astronaut])
    records, notes = ev.evaluate(generator, sim, [identity], ["a photo of {} smiling"], seed=7,
                                 candidates=3)
    assert notes == []
    request, identities = generator.requests[0]
    assert request.panels[0].text == "a photo of Eileen Collins smiling"
    assert request.panels[0].characters == ("Eileen Collins",) and "Eileen Collins" in identities
    (record,) = records
    scores = [c.face_sim for c in record.candidates]
    assert scores[0] is None and scores[1] < 0.93 < 0.95 < scores[2]
    assert record.best == 2
    row = ev.summarise(records, "x")
    assert row["face_rate"] == pytest.approx(2 / 3) and row["best_face_rate"] == 1.0
    assert row["best_face_sim"] == pytest.approx(scores[2])
