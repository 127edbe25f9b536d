"""The static-buffer training step (``train.fast_step``) against the eager step, on the tiny preset.

Tolerance: on a CPU in float32 the fast step differs from the eager one only in summation order
(encoder 2's last layer over the longest template's length, fused vs foreach clipping), so
losses and learned vectors agree to 1e-4 relative over 6 steps. On CUDA in bfloat16 without
autocast (the fast path) against bf16 autocast (the eager path), the bf16 tolerance is 5e-2
relative on losses and 2e-2 on the learned vectors (bf16 has 8 bits of mantissa: 4e-3 per op).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from faces.face_detection import DlibFaceDetector
from faces.face_prep import prepare_face
from stableidentity.fast_step import FastStep, resolve_fast_step
from stableidentity.trainer import StableIdentityTrainer

STEPS = 6


@pytest.fixture(scope="module")
def aligned(astronaut):
    return prepare_face(astronaut, DlibFaceDetector())


def _run(components, aligned, fast_step: str, steps: int = STEPS, seed: int = 5):
    trainer = StableIdentityTrainer(components, aligned, seed=seed, augment_pool=3, fast_step=fast_step)
    losses = trainer.run(steps)
    return trainer, losses, trainer.final_embeddings()


def test_fast_step_matches_the_eager_step_on_cpu(tiny_components, aligned):
    eager, eager_losses, (eager_l, eager_g) = _run(tiny_components, aligned, "off")
    fast, fast_losses, (fast_l, fast_g) = _run(tiny_components, aligned, "on")
    assert eager.fast_step is None and isinstance(fast.fast_step, FastStep)
    assert not fast.fast_step.capture  # a CPU runs the same function without graph capture
    torch.testing.assert_close(torch.tensor(fast_losses), torch.tensor(eager_losses), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(fast_l, eager_l, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(fast_g, eager_g, rtol=1e-4, atol=1e-6)
    # the vectors did move (the comparison is not between two untrained starts)
    start_l, _ = StableIdentityTrainer(tiny_components, aligned, seed=5, augment_pool=3,
                                       fast_step="off").final_embeddings()
    assert (fast_l - start_l).abs().max() > 1e-6


def test_fast_step_honours_given_inputs(tiny_components, aligned):
    """Explicit sample/timestep/noise/template reach the static buffers (a fixed batch twice over
    gives the same loss before any update as the eager step)."""
    eager = StableIdentityTrainer(tiny_components, aligned, seed=1, augment_pool=2, fast_step="off")
    fast = StableIdentityTrainer(tiny_components, aligned, seed=1, augment_pool=2, fast_step="on")
    sample = eager.next_sample()
    noise = torch.randn(sample.latents.shape, generator=torch.Generator().manual_seed(3))
    for t, template in ((torch.tensor([900]), 4), (torch.tensor([100]), 17)):
        a = eager.step(sample=sample, timesteps=t, noise=noise, template_index=template)
        b = fast.step(sample=sample, timesteps=t, noise=noise, template_index=template)
        assert a == pytest.approx(b, rel=1e-4)
    assert torch.equal(fast.fast_step.inputs.timesteps, torch.tensor([100]))
    assert torch.equal(fast.fast_step.inputs.input_ids, fast.prompts.input_ids[17:18])


def test_switch_off_is_the_eager_path_bit_for_bit(tiny_components, aligned):
    """``auto`` on a CPU and ``off`` both run the unchanged eager step: identical bits."""
    off, off_losses, (off_l, off_g) = _run(tiny_components, aligned, "off", steps=3)
    auto, auto_losses, (auto_l, auto_g) = _run(tiny_components, aligned, "auto", steps=3)
    assert auto.fast_step is None and off.fast_step is None
    assert off_losses == auto_losses
    assert torch.equal(off_l, auto_l) and torch.equal(off_g, auto_g)
    assert not off.optimizer.param_groups[0]["capturable"]


def test_switch_resolution():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_fast_step("auto", cuda, scaled=False) and not resolve_fast_step("auto", cpu, scaled=False)
    assert not resolve_fast_step("auto", cuda, scaled=True)  # float16 + GradScaler: eager
    assert resolve_fast_step("on", cpu, scaled=False) and not resolve_fast_step("off", cuda, scaled=False)
    with pytest.raises(ValueError, match="float16"):
        resolve_fast_step("on", cuda, scaled=True)
    with pytest.raises(ValueError, match="auto, on or off"):
        resolve_fast_step("fast", cpu, scaled=False)


def test_config_reads_yaml_on_and_off(tmp_path):
    from configs import load_config

    for raw, expected in (("on", "on"), ("off", "off"), ("'auto'", "auto"), ("true", "on")):
        path = tmp_path / f"{expected}.yaml"
        path.write_text(f"model:\n  kind: tiny\n  pretrained: tiny-sdxl\ntrain:\n  fast_step: {raw}\n")
        assert load_config(path=path).train.fast_step == expected
    assert load_config("sdxl").train.fast_step == "auto"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_step_matches_the_eager_step(tiny_config, aligned):
    from models.loading import load_components

    config = tiny_config.replace(runtime=dataclasses.replace(tiny_config.runtime, device="cuda",
                                                             dtype="bfloat16"))
    components = load_components(config)
    _, eager_losses, (eager_l, eager_g) = _run(components, aligned, "off")
    fast, fast_losses, (fast_l, fast_g) = _run(components, aligned, "auto")
    assert fast.fast_step is not None and fast.fast_step.capture and fast.fast_step._graph is not None
    torch.testing.assert_close(torch.tensor(fast_losses), torch.tensor(eager_losses), rtol=5e-2, atol=1e-3)
    torch.testing.assert_close(fast_l, eager_l, rtol=2e-2, atol=1e-3)
    torch.testing.assert_close(fast_g, eager_g, rtol=2e-2, atol=1e-3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs capture to fail: no CUDA device")
def test_a_failed_capture_falls_back_to_the_static_step(tiny_components, aligned, caplog):
    """Capture asked for where it cannot work (here: no CUDA device, so the side stream fails):
    one warning, then the same static-buffer step without a graph; the run matches eager."""
    _, eager_losses, (eager_l, _) = _run(tiny_components, aligned, "off", steps=5)
    trainer = StableIdentityTrainer(tiny_components, aligned, seed=5, augment_pool=3, fast_step="on")
    losses = trainer.run(2)  # Adam has state now: a failed capture must keep it, not reset it
    trainer.fast_step.capture = True
    with caplog.at_level("WARNING", logger="stableidentity.fast_step"):
        losses += trainer.run(3)
    assert "CUDA graph capture failed" in caplog.text and not trainer.fast_step.capture
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(eager_losses), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(trainer.final_embeddings()[0], eager_l, rtol=1e-4, atol=1e-6)
