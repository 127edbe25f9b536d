"""The two-phase masked loss (checked by hand) and the augmentations (masks follow the image)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from stableidentity.augment import NO_AUGMENT, AugmentSettings, augment, masks_to_latent
from configs import load_config
from stableidentity.loss import OFFICIAL_Z0_DIVISOR, two_phase_loss, uses_reconstruction, z0_divisor

SCALE = 0.13025


def _schedule() -> torch.Tensor:
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


def _inputs(batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shape = (batch, 4, 3, 3)
    tensors = {k: torch.randn(shape, generator=g) for k in ("eps_hat", "eps", "z_t", "z0")}
    face = (torch.rand(batch, 1, 3, 3, generator=g) > 0.5).float()
    hair = (torch.rand(batch, 1, 3, 3, generator=g) > 0.5).float()
    return tensors, face, hair


def _by_hand(x, face, hair, t, abar, alpha, hair_weight):
    """Straight from REFERENCE.md, one sample at a time, in float64 numpy."""
    n = lambda a: a.double().numpy()  # noqa: E731
    total_face, total_hair = 0.0, 0.0
    for i, ti in enumerate(t.tolist()):
        if ti > alpha * 1000:
            pred, target = n(x["eps_hat"][i]), n(x["eps"][i])
        else:
            a = float(abar[ti])
            pred = (n(x["z_t"][i]) - np.sqrt(1 - a) * n(x["eps_hat"][i])) / np.sqrt(a) / SCALE
            target = n(x["z0"][i]) / SCALE
        for mask, acc in ((n(face[i]), "face"), (n(hair[i]), "hair")):
            value = np.mean((mask * pred - mask * target) ** 2)
            if acc == "face":
                total_face += value
            else:
                total_hair += value
    b = len(t)
    return total_face / b + hair_weight * total_hair / b


@pytest.mark.parametrize("timesteps", [[999], [601], [600], [0], [250], [900, 10, 600, 601]])
def test_loss_matches_a_hand_computation(timesteps):
    t = torch.tensor(timesteps)
    x, face, hair = _inputs(len(timesteps))
    abar = _schedule()
    terms = two_phase_loss(**x, timesteps=t, face_mask=face, hair_mask=hair, alphas_cumprod=abar, alpha=0.6,
                           num_train_timesteps=1000, hair_weight=0.1, vae_scaling_factor=SCALE)
    expected = _by_hand(x, face, hair, t, abar, alpha=0.6, hair_weight=0.1)
    assert terms.total.item() == pytest.approx(expected, rel=1e-5)
    assert terms.reconstruction.tolist() == [ti <= 600 for ti in timesteps]


def test_branch_split_follows_alpha():
    t = torch.tensor([0, 400, 499, 500, 501, 999])
    assert uses_reconstruction(t, 0.5, 1000).tolist() == [True, True, True, True, False, False]
    assert uses_reconstruction(t, 0.6, 1000).tolist() == [True] * 5 + [False]
    x, face, hair = _inputs(1)
    common = dict(face_mask=face, hair_mask=hair, alphas_cumprod=_schedule(), num_train_timesteps=1000,
                  hair_weight=0.1, vae_scaling_factor=SCALE)
    at_550_a05 = two_phase_loss(**x, timesteps=torch.tensor([550]), alpha=0.5, **common).total
    at_550_a06 = two_phase_loss(**x, timesteps=torch.tensor([550]), alpha=0.6, **common).total
    noise_only = ((face * x["eps_hat"] - face * x["eps"]) ** 2).mean() \
        + 0.1 * ((hair * x["eps_hat"] - hair * x["eps"]) ** 2).mean()
    assert at_550_a05.item() == pytest.approx(noise_only.item(), rel=1e-6)   # 550 > 500: noise branch
    assert at_550_a06.item() != pytest.approx(noise_only.item(), rel=1e-3)   # 550 <= 600: reconstruction


def test_loss_is_a_mean_over_all_latent_elements_not_the_mask_area():
    x, _, _ = _inputs(1)
    face = torch.zeros(1, 1, 3, 3)
    face[0, 0, 1, 1] = 1.0
    hair = torch.zeros(1, 1, 3, 3)
    terms = two_phase_loss(**x, timesteps=torch.tensor([999]), face_mask=face, hair_mask=hair,
                           alphas_cumprod=_schedule(), alpha=0.6, num_train_timesteps=1000, hair_weight=0.1,
                           vae_scaling_factor=SCALE)
    diff = (x["eps_hat"][0, :, 1, 1] - x["eps"][0, :, 1, 1]) ** 2
    assert terms.total.item() == pytest.approx(diff.sum().item() / 36, rel=1e-6)  # 4 channels x 3 x 3
    assert terms.hair.item() == 0.0


def test_perfect_prediction_gives_zero_loss_in_both_branches():
    abar = _schedule()
    g = torch.Generator().manual_seed(1)
    z0, eps = torch.randn(2, 4, 3, 3, generator=g), torch.randn(2, 4, 3, 3, generator=g)
    t = torch.tensor([100, 900])
    a = abar[t].view(-1, 1, 1, 1)
    z_t = a.sqrt() * z0 + (1 - a).sqrt() * eps
    ones = torch.ones(2, 1, 3, 3)
    terms = two_phase_loss(eps_hat=eps, eps=eps, z_t=z_t, z0=z0, timesteps=t, face_mask=ones, hair_mask=ones,
                           alphas_cumprod=abar, alpha=0.6, num_train_timesteps=1000, hair_weight=0.1,
                           vae_scaling_factor=SCALE)
    assert terms.total.item() < 1e-8


def test_z0_weighting_official_divides_by_the_sd21_factor_and_vae_keeps_the_old_weight():
    """``train.z0_weighting``: official (default) divides by 0.18215 whatever the VAE, ``vae`` by
    the model's factor; the reconstruction branch then weighs (0.18215 / 0.13025)^2 = 1.96x more
    with ``vae``, and the noise branch is the same under both."""
    assert z0_divisor("official", SCALE) == OFFICIAL_Z0_DIVISOR == 0.18215
    assert z0_divisor("vae", SCALE) == SCALE
    with pytest.raises(ValueError, match="official"):
        z0_divisor("sd15", SCALE)
    for preset in ("tiny", "sdxl"):
        assert load_config(preset).train.z0_weighting == "official"
    x, face, hair = _inputs(1)
    common = dict(face_mask=face, hair_mask=hair, alphas_cumprod=_schedule(), alpha=0.6,
                  num_train_timesteps=1000, hair_weight=0.1)
    for t, ratio in ((250, (OFFICIAL_Z0_DIVISOR / SCALE) ** 2), (900, 1.0)):
        losses = [two_phase_loss(**x, timesteps=torch.tensor([t]), **common,
                                 vae_scaling_factor=z0_divisor(w, SCALE)).total.item()
                  for w in ("vae", "official")]
        assert losses[0] / losses[1] == pytest.approx(ratio, rel=1e-5)


def test_bad_z0_weighting_is_one_line(tmp_path):
    from configs import ConfigError

    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  z0_weighting: sdxl\n")
    with pytest.raises(ConfigError) as info:
        load_config(path=path)
    assert "train.z0_weighting" in str(info.value) and "official, vae" in str(info.value)


# ----------------------------------------------------------------------------- augmentation

GEOMETRY_ONLY = dataclasses.replace(NO_AUGMENT, flip_p=0.5, crop_p=1.0, downscale_p=1.0)


def _pattern(size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """An image whose channels ARE the masks, so any misalignment shows up."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    face = (((yy - 36) ** 2 + (xx - 24) ** 2) < 14 ** 2).float()
    hair = ((yy < 20) & (xx > 30)).float()
    image = torch.stack([face, hair, torch.zeros_like(face)])
    return image, torch.stack([face, hair])


@pytest.mark.parametrize("seed", range(6))
def test_masks_follow_every_geometric_augmentation(seed):
    image, masks = _pattern()
    sample = augment(image, masks, torch.Generator().manual_seed(seed), GEOMETRY_ONLY)
    assert torch.allclose(sample.image[:2], sample.masks, atol=1e-6)
    assert not torch.equal(sample.masks, masks)  # the geometry did change


def test_flip_is_reported_and_mirrors_image_and_masks():
    image, masks = _pattern()
    flip = dataclasses.replace(NO_AUGMENT, flip_p=1.0)
    sample = augment(image, masks, torch.Generator().manual_seed(0), flip)
    assert sample.flipped
    assert torch.equal(sample.image, image.flip(-1)) and torch.equal(sample.masks, masks.flip(-1))
    plain = augment(image, masks, torch.Generator().manual_seed(0), NO_AUGMENT)
    assert not plain.flipped and torch.equal(plain.image, image)


def test_downscale_pastes_on_a_black_canvas():
    image = torch.ones(3, 64, 64) * 0.7
    masks = torch.ones(2, 64, 64)
    settings = dataclasses.replace(AugmentSettings(), flip_p=0.0, crop_p=0.0, downscale_p=1.0,
                                   downscale_range=(0.5, 0.5), aspect_range=(1.0, 1.0))
    sample = augment(image, masks, torch.Generator().manual_seed(0), settings)
    covered = sample.masks[0] > 0.5
    assert covered.sum().item() == 32 * 32
    assert sample.image[:, ~covered].abs().max() == 0.0   # black stays black despite colour jitter
    assert sample.image[:, covered].min() > 0.3


def test_colour_jitter_stays_in_range_and_leaves_masks_alone():
    image = torch.full((3, 32, 32), 0.5)
    image[0] = 0.6
    masks = torch.ones(2, 32, 32)
    settings = dataclasses.replace(AugmentSettings(), flip_p=0.0, crop_p=0.0, downscale_p=0.0)
    means = []
    for seed in range(20):
        sample = augment(image, masks, torch.Generator().manual_seed(seed), settings)
        assert torch.equal(sample.masks, masks)
        means.append(sample.image.mean().item())
    base = image.mean().item()
    assert 0.75 * base < min(means) < max(means) < 1.25 * base and max(means) - min(means) > 0.02


def test_augmentation_is_deterministic_per_seed():
    image, masks = torch.rand(3, 64, 64), _pattern()[1]
    a = augment(image, masks, torch.Generator().manual_seed(5))
    b = augment(image, masks, torch.Generator().manual_seed(5))
    assert torch.equal(a.image, b.image) and torch.equal(a.masks, b.masks)
    different = [not torch.equal(augment(image, masks, torch.Generator().manual_seed(s)).image, a.image)
                 for s in range(6, 10)]
    assert all(different)


def test_masks_to_latent_area_mode_thresholds_block_coverage_at_half():
    mask = torch.zeros(1, 64, 64)
    mask[0, :, :20] = 1.0   # latent columns: 0, 1 fully covered (0..15), column 2 = 4/8 covered
    latent = masks_to_latent(mask, (8, 8), resample="bilinear")
    assert latent.shape == (1, 8, 8)
    assert latent[0, :, :2].eq(1).all() and latent[0, :, 2:].eq(0).all()  # exactly 0.5 is not > 0.5
    mask[0, :, 20] = 1.0    # column 2 now 5/8 covered
    assert masks_to_latent(mask, (8, 8), resample="bilinear")[0, :, 2].eq(1).all()


def test_masks_to_latent_bicubic_mode_matches_the_official_resize():
    """Official: bicubic with align_corners=True to the latent size, then >= 0.5."""
    mask = torch.zeros(2, 64, 64)
    mask[0, 10:40, 5:50] = 1.0
    mask[1, :, :33] = 1.0
    expected = torch.nn.functional.interpolate(mask[:, None], (8, 8), mode="bicubic", align_corners=True)
    latent = masks_to_latent(mask, (8, 8))
    assert torch.equal(latent, (expected[:, 0] >= 0.5).float())
    assert latent.sum() > 0 and latent.eq(0).any()


# ----------------------------------------------------------------------------- augmentation frequencies


def test_default_augmentation_is_the_official_one():
    from configs import load_config

    for preset in ("sdxl", "tiny"):
        assert AugmentSettings.from_config(load_config(preset).train) == AugmentSettings()
    settings = AugmentSettings()
    assert (settings.crop_p, settings.downscale_p, settings.flip_p) == (1.0, 1.0, 0.5)
    assert settings.aspect_range == (0.9, 1.1) and settings.resample == "bicubic"


def _record(monkeypatch) -> dict[str, list]:
    """Wrap the real crop and paste so each call (and the pasted box) is recorded."""
    from stableidentity import augment as module

    calls: dict[str, list] = {"crop": [], "paste": []}
    real_crop, real_paste = module.random_crop_resize, module.random_downscale_paste

    def crop(stack, *args, **kwargs):
        calls["crop"].append(1)
        return real_crop(stack, *args, **kwargs)

    def paste(stack, *args, **kwargs):
        out = real_paste(stack, *args, **kwargs)
        rows, cols = out[-1].gt(0).any(1).nonzero(), out[-1].gt(0).any(0).nonzero()  # last channel: all ones
        calls["paste"].append((int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)))
        return out

    monkeypatch.setattr(module, "random_crop_resize", crop)
    monkeypatch.setattr(module, "random_downscale_paste", paste)
    return calls


def test_crop_and_paste_on_every_sample_with_aspect_jitter(monkeypatch):
    calls = _record(monkeypatch)
    image, masks = torch.rand(3, 64, 64), torch.ones(2, 64, 64)
    generator = torch.Generator().manual_seed(0)
    draws = 400
    flips = sum(augment(image, masks, generator).flipped for _ in range(draws))
    assert len(calls["crop"]) == draws and len(calls["paste"]) == draws
    assert 0.42 * draws < flips < 0.58 * draws        # p = 0.5: 6 binomial sigmas wide
    heights = torch.tensor([h for h, _ in calls["paste"]], dtype=torch.float32)
    aspects = torch.tensor([w / h for h, w in calls["paste"]])
    assert heights.min() >= 32 and heights.max() <= 64 and heights.std() > 5   # int(64 * U(0.5, 1))
    assert aspects.min() >= 0.87 and aspects.max() <= 1.13          # int(h * U(0.9, 1.1)), rounding down
    assert (aspects < 0.95).any() and (aspects > 1.05).any()


def test_crop_and_paste_probabilities_follow_the_switches(monkeypatch):
    calls = _record(monkeypatch)
    image, masks = torch.rand(3, 32, 32), torch.ones(2, 32, 32)
    settings = dataclasses.replace(AugmentSettings(), crop_p=0.5, downscale_p=0.25, aspect_range=(1.0, 1.0))
    generator = torch.Generator().manual_seed(1)
    draws = 400
    for _ in range(draws):
        augment(image, masks, generator, settings)
    assert 0.42 * draws < len(calls["crop"]) < 0.58 * draws
    assert 0.18 * draws < len(calls["paste"]) < 0.32 * draws
    assert all(h == w for h, w in calls["paste"])                    # no aspect jitter
    calls["crop"].clear()
    calls["paste"].clear()
    for _ in range(50):
        augment(image, masks, generator, NO_AUGMENT)
    assert calls == {"crop": [], "paste": []}


def test_add_noise_matches_the_ddpm_scheduler(tiny_components):
    from stableidentity.loss import add_noise

    scheduler = tiny_components.train_scheduler
    g = torch.Generator().manual_seed(0)
    z0, eps = torch.randn(3, 4, 8, 8, generator=g), torch.randn(3, 4, 8, 8, generator=g)
    t = torch.tensor([0, 500, 999])
    ours = add_noise(z0, eps, t, scheduler.alphas_cumprod)
    torch.testing.assert_close(ours, scheduler.add_noise(z0, eps, t), rtol=1e-5, atol=1e-6)
