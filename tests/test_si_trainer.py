"""Identity training end to end on the tiny preset with real faces."""

from __future__ import annotations

import hashlib
import io
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from stableidentity.augment import NO_AUGMENT
from faces.face_detection import DlibFaceDetector
from faces.face_prep import FacePrepError, prepare_face
from stableidentity.trainer import (StableIdentityTrainer, TrainedIdentity, TrainingCancelled, TrainProgress,
                                    train_identity)


@pytest.fixture(scope="module")
def aligned(astronaut):
    return prepare_face(astronaut, DlibFaceDetector())


@pytest.fixture(scope="module")
def astronaut_png(astronaut) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(astronaut).save(buffer, "PNG")
    return buffer.getvalue()


def _frozen_parameters(components):
    for name in ("text_encoder", "text_encoder_2", "unet", "vae", "fr_vit", "face_parser"):
        yield from getattr(components, name).parameters()


def test_gradients_reach_the_mlps_and_nothing_else(tiny_components, aligned):
    trainer = StableIdentityTrainer(tiny_components, aligned, seed=0)
    sample = trainer.next_sample()
    for t in (900, 100):  # both loss branches
        terms = trainer.loss(sample, torch.tensor([t]), trainer.draw_noise(sample.latents), 0)
        terms.total.backward()
        for parameter in trainer.trainable_parameters():
            assert parameter.grad is not None and torch.isfinite(parameter.grad).all()
        weights = [m.weight for m in (trainer.mlp_l.net[0], trainer.mlp_l.net[-1], trainer.mlp_g.net[-1])]
        assert all(w.grad.abs().sum() > 0 for w in weights)
        trainer.optimizer.zero_grad(set_to_none=True)
    assert all(p.grad is None and not p.requires_grad for p in _frozen_parameters(tiny_components))
    assert trainer.features.grad is None and not trainer.features.requires_grad
    trainable = {id(p) for p in trainer.trainable_parameters()}
    optimised = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert optimised == trainable


def test_loss_falls_when_overfitting_a_fixed_batch(tiny_components, aligned):
    # No augmentation, a fixed set of timesteps covering both branches, fixed noise: the evaluation
    # is deterministic, so any decrease is learning. The tiny UNet has random weights and listens
    # only weakly to its conditioning (even free, unconstrained word vectors lower this loss by only
    # ~7%), so a larger learning rate than the preset's is used to make 50 steps count.
    trainer = StableIdentityTrainer(tiny_components, aligned, seed=0, augmentation=NO_AUGMENT,
                                    learning_rate=1e-2)
    sample = trainer.next_sample()
    timesteps = [torch.tensor([t]) for t in (100, 300, 500, 650, 800, 950)]
    g = torch.Generator().manual_seed(1)
    noises = [torch.randn(sample.latents.shape, generator=g) for _ in timesteps]

    def evaluate() -> float:
        with torch.no_grad():
            losses = [trainer.loss(sample, t, n, 0).total.item() for t, n in zip(timesteps, noises)]
            return float(np.mean(losses))

    before = evaluate()
    curve = []
    for step in range(50):
        k = step % len(timesteps)
        trainer.step(sample=sample, timesteps=timesteps[k], noise=noises[k], template_index=0)
        if step in (24, 49):
            curve.append(evaluate())
    assert curve[0] < before and curve[1] < curve[0]
    assert curve[1] < 0.98 * before, (before, curve)


def test_train_identity_result_progress_and_sharing(tiny_components, astronaut_png):
    unet_sum = sum(p.double().sum().item() for p in tiny_components.unet.parameters())
    table = tiny_components.text_encoder_2.get_input_embeddings().weight.clone()
    reports: list[TrainProgress] = []
    result = train_identity(tiny_components, astronaut_png, steps=12, progress=reports.append, seed=3)
    assert isinstance(result, TrainedIdentity)
    assert result.clip_l.shape == (2, 32) and result.clip_g.shape == (2, 64)
    for tensor in (result.clip_l, result.clip_g):
        assert tensor.dtype == torch.float32 and tensor.device.type == "cpu" and not tensor.requires_grad
        assert torch.isfinite(tensor).all()
    assert result.face.size == (512, 512) and result.face.mode == "RGB"
    assert result.photo_sha256 == hashlib.sha256(astronaut_png).hexdigest()
    assert result.steps == 12 and np.isfinite(result.final_loss)
    assert result.final_loss == pytest.approx(reports[-1].loss)  # last 10% of 12 steps = 1 step
    assert any("masks drawn from the face landmarks" in w for w in result.warnings)
    assert [r.step for r in reports] == list(range(1, 13)) and all(r.total == 12 for r in reports)
    assert all(b.elapsed_s >= a.elapsed_s for a, b in zip(reports, reports[1:]))
    assert reports[-1].eta_s == 0.0 and reports[0].eta_s > 0
    # shared components untouched
    assert sum(p.double().sum().item() for p in tiny_components.unet.parameters()) == unet_sum
    assert torch.equal(tiny_components.text_encoder_2.get_input_embeddings().weight, table)
    assert len(tiny_components.tokenizer) == 49408


def test_same_seed_same_identity_other_seed_other(tiny_components, astronaut):
    a = train_identity(tiny_components, astronaut, steps=3, seed=7)
    b = train_identity(tiny_components, astronaut, steps=3, seed=7)
    c = train_identity(tiny_components, astronaut, steps=3, seed=8)
    assert torch.equal(a.clip_l, b.clip_l) and torch.equal(a.clip_g, b.clip_g)
    assert not torch.equal(a.clip_l, c.clip_l)
    assert a.photo_sha256 == hashlib.sha256(np.ascontiguousarray(astronaut).tobytes()).hexdigest()


def test_learned_embeddings_stay_in_the_celebrity_range(tiny_components, aligned):
    trainer = StableIdentityTrainer(tiny_components, aligned, seed=0)
    for _ in range(5):
        trainer.step()
    clip_l, clip_g = trainer.final_embeddings()
    for v, stats in ((clip_l, trainer.stats_l), (clip_g, trainer.stats_g)):
        z = (v - stats.mean.cpu()) / stats.std.cpu()
        assert z.abs().max() < 6.0


def test_cancel_stops_training(tiny_components, astronaut):
    cancel = threading.Event()
    reports: list[TrainProgress] = []

    def progress(report: TrainProgress) -> None:
        reports.append(report)
        if report.step == 3:
            cancel.set()

    # step k is reported once step k + 1 is queued, so at most one more step runs after the set
    with pytest.raises(TrainingCancelled, match="after 4 of 50 steps"):
        train_identity(tiny_components, astronaut, steps=50, progress=progress, cancel=cancel)
    assert [r.step for r in reports] == [1, 2, 3]
    reports.clear()
    with pytest.raises(TrainingCancelled):
        train_identity(tiny_components, astronaut, steps=5, progress=reports.append, cancel=cancel)
    assert reports == []


@pytest.mark.parametrize("photo, message", [
    (b"GIF89a-but-not-really", "not a readable image"),
    (np.zeros((40, 40, 3), np.uint8), "too small"),
    (np.full((200, 300, 3), 250, np.uint8), "no face found"),
])
def test_bad_photos_fail_before_any_training(tiny_components, photo, message):
    reports: list[TrainProgress] = []
    with pytest.raises(FacePrepError, match=message):
        train_identity(tiny_components, photo, steps=5, progress=reports.append)
    assert reports == []


def test_steps_must_be_positive(tiny_components, astronaut):
    with pytest.raises(ValueError, match="at least 1"):
        train_identity(tiny_components, astronaut, steps=0)


def test_augmentations_are_fresh_until_the_pool_is_full_then_reused(tiny_components, aligned, monkeypatch):
    trainer = StableIdentityTrainer(tiny_components, aligned, seed=0, augment_pool=5)
    encoded: list[int] = []
    original = trainer.encode_views

    def counting(count: int):
        encoded.append(count)
        return original(count)

    monkeypatch.setattr(trainer, "encode_views", counting)
    first = [trainer.next_view() for _ in range(5)]
    assert encoded == [5] and len({id(v) for v in first}) == 5   # five distinct fresh views
    later = [trainer.next_view() for _ in range(20)]
    assert encoded == [5]                                         # no more VAE encoding
    assert all(any(v is f for f in first) for v in later) and len({id(v) for v in later}) > 1
    # each use still draws a fresh VAE posterior sample
    a, b = trainer.next_sample(), trainer.next_sample()
    assert not torch.equal(a.latents, b.latents)

    never = StableIdentityTrainer(tiny_components, aligned, seed=0, augment_pool=None)
    views = [never.next_view() for _ in range(10)]
    assert len({id(v) for v in views}) == 10 and not never._pool


def test_trainer_z0_weighting_follows_the_config(tiny_components, aligned):
    """``train.z0_weighting``: the trainer's reconstruction branch (t <= 600) weighs
    (0.18215 / vae factor)^2 more with ``vae`` than with ``official``; the noise branch is equal."""
    import dataclasses

    def trainer_with(weighting: str) -> StableIdentityTrainer:
        cfg = tiny_components.config
        config = cfg.replace(train=dataclasses.replace(cfg.train, z0_weighting=weighting))
        return StableIdentityTrainer(dataclasses.replace(tiny_components, config=config), aligned, seed=0,
                                     augmentation=NO_AUGMENT)

    official, vae = trainer_with("official"), trainer_with("vae")
    assert tiny_components.config.train.z0_weighting == "official"
    sample = official.next_sample()
    factor = tiny_components.vae.config.scaling_factor
    assert abs(factor - 0.18215) > 0.01  # else the two settings would coincide
    noise = official.draw_noise(sample.latents)
    with torch.no_grad():
        for t, ratio in ((100, (0.18215 / factor) ** 2), (900, 1.0)):
            a, b = (trainer.loss(sample, torch.tensor([t]), noise, 0).total.item() for trainer in (vae, official))
            assert a / b == pytest.approx(ratio, rel=1e-4)
