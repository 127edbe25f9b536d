"""Identity prior (FR-ViT input/feature), the MLPs, celebrity names and the AdaIN statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.clip_tokenizer import build_clip_tokenizer
from stableidentity import adain as adain_module
from stableidentity.adain import CelebStats, adain, celeb_stats, celeb_token_ids
from stableidentity.celebrities import CELEBRITIES, OFFICIAL_CELEBRITIES, celebrity_names
from stableidentity.identity_encoder import FR_VIT_CROP_BOX, fr_vit_pixels, identity_features
from stableidentity.mlp import EqualLinear, IdentityMLP

# ----------------------------------------------------------------------------- FR-ViT


def test_fr_vit_input_is_the_crop_box_resized_and_normalised():
    image = np.zeros((512, 512, 3), dtype=np.uint8)
    x0, y0, x1, y1 = FR_VIT_CROP_BOX
    image[y0:y1, x0:x1] = 255            # the box is white, everything else black
    image[y0:y0 + 188, x0:x1, 0] = 0     # top half of the box has no red
    pixels = fr_vit_pixels(image)
    assert pixels.shape == (1, 3, 224, 224) and pixels.dtype == torch.float32
    assert torch.allclose(pixels[0, 1:], torch.ones(2, 224, 224))    # mean = std = 0.5 -> white is +1
    assert torch.allclose(pixels[0, 0, :100], torch.full((100, 224), -1.0))   # black is -1
    assert torch.allclose(pixels[0, 0, 124:], torch.ones(100, 224))


def test_identity_features_shape_and_identity_dependence(tiny_components, astronaut, grace_hopper):
    from faces.face_detection import DlibFaceDetector
    from faces.face_prep import prepare_face

    detector = DlibFaceDetector()
    faces = np.stack([prepare_face(p, detector).image for p in (astronaut, grace_hopper)])
    features = identity_features(tiny_components.fr_vit, faces)
    assert features.shape == (2, tiny_components.fr_vit.config.hidden_size)
    assert features.dtype == torch.float32
    assert not torch.allclose(features[0], features[1], atol=1e-3)
    again = identity_features(tiny_components.fr_vit, faces[1])
    assert torch.allclose(again[0], features[1], atol=1e-5)
    direct = tiny_components.fr_vit(pixel_values=fr_vit_pixels(faces[:1])).last_hidden_state[:, 0]
    assert torch.allclose(direct, features[:1], atol=1e-5)  # the CLS token of the last hidden state


def test_mirror_feature_flips_the_crop_not_the_face(tiny_components):
    """Official: the ViT input is cut from the unflipped face, then flipped. The box is not
    centred (64..440 of 512), so flipping first would shift the window by 8 px."""
    image = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    both = identity_features(tiny_components.fr_vit, image, with_mirror=True)
    pixels = fr_vit_pixels(image)
    with torch.no_grad():
        flipped = tiny_components.fr_vit(pixel_values=pixels.flip(-1)).last_hidden_state[:, 0]
    assert both.shape == (2, tiny_components.fr_vit.config.hidden_size)
    assert torch.allclose(both[1:], flipped, atol=1e-5)
    assert torch.allclose(both[:1], identity_features(tiny_components.fr_vit, image), atol=1e-5)
    assert not torch.allclose(both[1:], identity_features(tiny_components.fr_vit, image[:, ::-1].copy()),
                              atol=1e-4)


# ----------------------------------------------------------------------------- MLP


def test_equal_linear_init_and_effective_learning_rate():
    layer = EqualLinear(512, 1024, lr_mul=0.1, generator=torch.Generator().manual_seed(0))
    assert abs(layer.weight.std().item() - 0.02) < 0.0005   # stored = N(0, 0.02), as the official init
    assert abs(layer.effective_weight.std().item() - 0.002) < 0.00005
    assert torch.count_nonzero(layer.bias) == 0
    before = layer.effective_weight.detach().clone()
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3)
    layer(torch.randn(8, 512)).pow(2).sum().backward()
    optimizer.step()  # Adam's first step moves every stored value by lr
    moved = (layer.effective_weight.detach() - before).abs()
    assert torch.allclose(moved.max(), torch.tensor(1e-4), rtol=1e-3)  # effective lr = lr * lr_mul


@pytest.mark.parametrize("token_dim", [768, 1280])
def test_trainer_mlps_start_with_effective_weight_std_0002(token_dim):
    """The official init (train.py overwrites every EqualLinear weight with N(0, 0.02), lr_mul 0.1
    in the forward pass): the weights in use start at std 0.002, the biases at 0."""
    from configs import load_config

    cfg = load_config("sdxl").train
    mlp = IdentityMLP(768, token_dim, depth=cfg.mlp_depth, hidden_factor=cfg.mlp_hidden_factor,
                      final_affine=cfg.mlp_final_affine, lr_mul=cfg.lr_multiplier, init_std=cfg.mlp_init_std,
                      generator=torch.Generator().manual_seed(0))
    linears = mlp.equal_linears()
    assert [tuple(m.weight.shape) for m in linears] == [(2 * token_dim, 768), (2 * token_dim, 2 * token_dim)]
    for layer in linears:
        std = layer.effective_weight.std().item()
        assert abs(std - 0.002) < 0.0002, std
        assert torch.count_nonzero(layer.bias) == 0
    assert mlp.norm.elementwise_affine and mlp.norm.weight.eq(1).all() and mlp.norm.bias.eq(0).all()


@pytest.mark.parametrize("depth", [2, 6])
def test_identity_mlp_layout_and_normalised_output(depth):
    mlp = IdentityMLP(32, 64, depth=depth, generator=torch.Generator().manual_seed(0))
    kinds = [type(m).__name__ for m in mlp.net]
    assert kinds == ["EqualLinear", "LeakyReLU"] + ["Residual"] * (depth - 2) + ["LayerNorm", "EqualLinear"]
    for block in mlp.net[2:2 + depth - 2]:   # official: x + LeakyReLU(EqualLinear(LayerNorm(x)))
        assert [type(m).__name__ for m in block.block] == ["LayerNorm", "EqualLinear", "LeakyReLU"]
    assert all(m.negative_slope == 0.2 for m in mlp.modules() if isinstance(m, torch.nn.LeakyReLU))
    assert mlp.net[0].weight.shape == (128, 32)   # hidden width 2d = 128 for d = 64
    assert mlp.norm.normalized_shape == (128,) and mlp.norm.elementwise_affine
    out = mlp(torch.randn(5, 32))
    assert out.shape == (5, 2, 64)
    flat = out.flatten(1)
    assert torch.allclose(flat.mean(1), torch.zeros(5), atol=1e-5)
    # 0.99, not 1: with weights of std 0.002 the pre-norm variance (~5e-4 here) is not far above
    # LayerNorm's eps 1e-5 (as in the official code; at SDXL widths it is ~1e-2)
    assert torch.allclose(flat.std(1, unbiased=False), torch.ones(5), atol=0.03)


def test_identity_mlp_switches_restore_the_older_layout():
    mlp = IdentityMLP(32, 64, hidden_factor=1, final_affine=False, init_std=0.2,
                      generator=torch.Generator().manual_seed(0))
    assert mlp.net[0].weight.shape == (64, 32) and not mlp.norm.elementwise_affine
    assert abs(mlp.net[0].effective_weight.std().item() - 0.02) < 0.003


def test_identity_mlp_init_is_seeded():
    a = IdentityMLP(32, 64, generator=torch.Generator().manual_seed(3))
    b = IdentityMLP(32, 64, generator=torch.Generator().manual_seed(3))
    c = IdentityMLP(32, 64, generator=torch.Generator().manual_seed(4))
    x = torch.randn(2, 32)
    assert torch.equal(a(x), b(x)) and not torch.equal(a(x), c(x))


# ----------------------------------------------------------------------------- celebrities and AdaIN


@pytest.mark.parametrize("names", [OFFICIAL_CELEBRITIES, CELEBRITIES], ids=["official", "extended"])
def test_celebrity_lists_hold_two_single_token_names(names):
    tokenizer = build_clip_tokenizer()
    assert len(names) >= 300 and len(set(names)) == len(names)
    for name in names:
        words = name.split()
        assert len(words) == 2, name
        for word in words:
            assert len(tokenizer(word, add_special_tokens=False).input_ids) == 1, (name, word)
        # the official code's choice, tokens 1 and 2 of the tokenised name, is the same pair
        assert tokenizer(name).input_ids[1:3] == [tokenizer(w, add_special_tokens=False).input_ids[0]
                                                  for w in words]


def test_the_official_list_is_the_official_file_and_the_default():
    # datasets_face/selected_celeb_names.txt: 326 lines, "Adam Savage" first, "Zachary Levi" last
    assert len(OFFICIAL_CELEBRITIES) == 326
    assert OFFICIAL_CELEBRITIES[:2] == ("Adam Savage", "Adam Scott")
    assert OFFICIAL_CELEBRITIES[-1] == "Zachary Levi"
    assert len(set(OFFICIAL_CELEBRITIES) & set(CELEBRITIES)) == 119
    assert celebrity_names("official") is OFFICIAL_CELEBRITIES
    assert celebrity_names("extended") is CELEBRITIES
    with pytest.raises(ValueError, match="official.*extended|extended.*official"):
        celebrity_names("famous")
    from configs import load_config
    assert {load_config(n).train.celebrity_names for n in ("sdxl", "tiny")} == {"official"}


def test_celeb_stats_match_raw_embedding_rows(tiny_components, tmp_path):
    encoder, tokenizer = tiny_components.text_encoder_2, tiny_components.tokenizer_2
    stats = celeb_stats(encoder, tokenizer, "tiny/te2", cache_dir=tmp_path)
    table = encoder.get_input_embeddings().weight.detach().numpy()
    vocab = tokenizer.get_vocab()
    rows = np.stack([[table[vocab[w.lower() + "</w>"]] for w in name.split()] for name in OFFICIAL_CELEBRITIES])
    assert stats.mean.shape == (2, 64) and stats.std.shape == (2, 64) and stats.num_names == len(OFFICIAL_CELEBRITIES)
    np.testing.assert_allclose(stats.mean.numpy(), rows.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(stats.std.numpy(), rows.std(axis=0, ddof=1), atol=1e-6)


def test_celeb_stats_are_cached_on_disk_keyed_by_the_table(tiny_components, tmp_path, monkeypatch):
    monkeypatch.setenv("COMIC_CACHE", str(tmp_path))
    encoder, tokenizer = tiny_components.text_encoder, tiny_components.tokenizer
    first = celeb_stats(encoder, tokenizer, "tiny-sdxl/text_encoder")
    files = list((tmp_path / "celeb_stats").glob("*.safetensors"))
    assert len(files) == 1 and files[0].name.startswith("tiny-sdxl_text_encoder-")

    def fail(rows):
        raise AssertionError("recomputed despite the cache")

    monkeypatch.setattr(adain_module, "compute_celeb_stats", fail)
    cached = celeb_stats(encoder, tokenizer, "tiny-sdxl/text_encoder")
    assert torch.equal(cached.mean, first.mean) and torch.equal(cached.std, first.std)
    monkeypatch.undo()
    monkeypatch.setenv("COMIC_CACHE", str(tmp_path))
    other = celeb_stats(tiny_components.text_encoder_2, tiny_components.tokenizer_2, "tiny-sdxl/text_encoder")
    assert len(list((tmp_path / "celeb_stats").glob("*.safetensors"))) == 2  # other table, other key
    assert other.mean.shape[1] != first.mean.shape[1]


def test_celeb_token_ids_reject_multi_token_names():
    tokenizer = build_clip_tokenizer()
    ids = celeb_token_ids(tokenizer, ["Tom Hanks"])
    expected = [tokenizer.convert_tokens_to_ids("tom</w>"), tokenizer.convert_tokens_to_ids("hanks</w>")]
    assert ids.tolist() == [expected]
    with pytest.raises(ValueError, match="not one"):
        celeb_token_ids(tokenizer, ["Tom Xyzzyplugh"])
    with pytest.raises(ValueError, match="two words"):
        celeb_token_ids(tokenizer, ["Cher"])


def test_adain_output_has_the_celebrity_statistics():
    generator = torch.Generator().manual_seed(0)
    mean = torch.randn(2, 16, generator=generator) * 0.01
    std = torch.rand(2, 16, generator=generator) * 0.02 + 0.005
    stats = CelebStats(mean=mean, std=std, num_names=300)
    normalised = torch.randn(20000, 2, 16, generator=generator)   # zero mean, unit std per dim
    v = adain(normalised, stats)
    assert torch.allclose(v.mean(0), mean, atol=1e-3)   # standard error ~2e-4
    assert torch.allclose(v.std(0), std, rtol=0.03)


def test_adain_on_mlp_outputs_stays_in_the_name_range(tiny_components, tmp_path):
    stats = celeb_stats(tiny_components.text_encoder, tiny_components.tokenizer, "tiny/te1",
                        cache_dir=tmp_path)
    mlp = IdentityMLP(32, 32, generator=torch.Generator().manual_seed(0))
    v = adain(mlp(torch.randn(256, 32)), stats)
    z = (v - stats.mean) / stats.std
    assert z.abs().max() < 6.0      # within a few name-standard-deviations of the name mean
    table = tiny_components.text_encoder.get_input_embeddings().weight
    assert v.abs().max() < 3 * table.abs().max()
