"""The speed switches of docs/PERFORMANCE.md, exercised on the CPU with the tiny preset.

Config keys (typed, validated, one-line errors), gradient checkpointing (same gradients, really
checkpointing), the augmentation pool and mixed precision wired from the config, what autograd
records, channels-last and torch.compile applied once to the shared modules, and the prompt
cache (same tensors, same pixels, fewer encodes). No timings: speed is the GPU benchmark's job.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.utils.checkpoint

import models.loading as loading
from configs import ConfigError, load_config
from pipelines.binding import PromptCache, PromptEmbeddings, cast_key, tensor_digest
from pipelines.generation import ComicRequest, PanelGenerator, PanelSpec, panel_generator
from faces.face_detection import DlibFaceDetector
from faces.face_prep import prepare_face
from identities.library import Identity
from stableidentity.trainer import (PREFETCH, StableIdentityTrainer, set_gradient_checkpointing,
                                    mlp_dtype, train_identity, unet_precision)


# ----------------------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def aligned(astronaut):
    return prepare_face(astronaut, DlibFaceDetector())


def with_config(components, *, runtime=None, train=None, generation=None, copy_modules=False):
    """``components`` with some config sections changed (modules shared unless copied)."""
    cfg = components.config
    cfg = cfg.replace(runtime=dataclasses.replace(cfg.runtime, **(runtime or {})),
                      train=dataclasses.replace(cfg.train, **(train or {})),
                      generation=dataclasses.replace(cfg.generation, **(generation or {})))
    changes = {"config": cfg}
    if copy_modules:
        changes |= {n: copy.deepcopy(getattr(components, n)) for n in ("unet", "vae")}
    return dataclasses.replace(components, **changes)


def person(name: str, seed: int) -> Identity:
    g = torch.Generator().manual_seed(seed)
    return Identity(name=name, pronouns="", clip_l=torch.randn(2, 32, generator=g) * 0.05,
                    clip_g=torch.randn(2, 64, generator=g) * 0.05, metadata={}, folder=Path("."))


ADA = person("Ada Lovelace", 1)


def pixels(image):
    return np.asarray(image, dtype=np.int16)


class CheckpointSpy:
    """Counts calls of ``torch.utils.checkpoint.checkpoint`` (diffusers looks it up per call)."""

    def __init__(self, monkeypatch):
        self.calls = 0
        original = torch.utils.checkpoint.checkpoint

        def spy(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", spy)


def autograd_leaves(tensor: torch.Tensor) -> set[int]:
    """ids of every leaf tensor the backward of ``tensor`` would accumulate a gradient into."""
    seen, leaves, stack = set(), set(), [tensor.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if hasattr(fn, "variable"):
            leaves.add(id(fn.variable))
        stack.extend(f for f, _ in fn.next_functions)
    return leaves


# ----------------------------------------------------------------------------- config

def test_presets_carry_the_speed_switches_with_safe_defaults():
    for name in ("sdxl", "tiny"):
        cfg = load_config(name)
        assert (cfg.runtime.compile, cfg.runtime.compile_scope, cfg.runtime.compile_mode,
                cfg.runtime.channels_last) == ("auto", "regional", "default", False)  # auto: CUDA only
        assert (cfg.train.augment_pool, cfg.train.gradient_checkpointing, cfg.train.mixed_precision) == \
            (64, False, "auto")
        assert cfg.generation.prompt_cache_size == 32


@pytest.mark.parametrize("text, key, says", [
    ("runtime:\n  compile: 'yes'\n", "runtime.compile", "auto, on, off"),
    ("runtime:\n  compile_scope: all\n", "runtime.compile_scope", "regional, whole"),
    ("runtime:\n  compile_mode: fast\n", "runtime.compile_mode", "reduce-overhead"),
    ("runtime:\n  channels_last: 1\n", "runtime.channels_last", "true or false"),
    ("train:\n  augment_pool: -1\n", "train.augment_pool", "must not be negative"),
    ("train:\n  augment_pool: 2.5\n", "train.augment_pool", "whole number"),
    ("train:\n  gradient_checkpointing: on-demand\n", "train.gradient_checkpointing", "true or false"),
    ("train:\n  mixed_precision: int8\n", "train.mixed_precision", "auto, no, bf16, fp16"),
    ("train:\n  mlp_dtype: half\n", "train.mlp_dtype", "float32, weights"),
    ("train:\n  celebrity_names: famous\n", "train.celebrity_names", "official, extended"),
    ("generation:\n  prompt_cache_size: -3\n", "generation.prompt_cache_size", "must not be negative"),
])
def test_bad_speed_switch_values_give_one_line_errors(tmp_path, text, key, says):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path=path)
    message = str(info.value)
    assert key in message and str(path) in message and says in message and "\n" not in message


def test_good_speed_switch_values_load(tmp_path):
    path = tmp_path / "fast.yaml"
    path.write_text("runtime:\n  compile: true\n  compile_mode: reduce-overhead\n  channels_last: true\n"
                    "train:\n  augment_pool: 0\n  gradient_checkpointing: true\n  mixed_precision: bf16\n"
                    "generation:\n  prompt_cache_size: 0\n")
    cfg = load_config(path=path)
    assert cfg.runtime.compile == "on" and cfg.runtime.compile_mode == "reduce-overhead" and cfg.runtime.channels_last
    assert cfg.train.augment_pool == 0 and cfg.train.gradient_checkpointing
    assert cfg.train.mixed_precision == "bf16" and cfg.generation.prompt_cache_size == 0


# ----------------------------------------------------------------------------- training

def test_gradient_checkpointing_gives_the_same_gradients(tiny_components, aligned, monkeypatch):
    unet = tiny_components.unet
    spy = CheckpointSpy(monkeypatch)

    def gradients(trainer, sample, noise):
        out = []
        for t in (900, 100):  # both loss branches
            trainer.loss(sample, torch.tensor([t]), noise, 3).total.backward()
            out.append([p.grad.clone() for p in trainer.trainable_parameters()])
            trainer.optimizer.zero_grad(set_to_none=True)
        return out

    try:
        plain = StableIdentityTrainer(tiny_components, aligned, seed=0)
        assert not unet.is_gradient_checkpointing and plain.config.gradient_checkpointing is False
        sample = plain.next_sample()
        noise = plain.draw_noise(sample.latents)
        expected = gradients(plain, sample, noise)
        assert spy.calls == 0

        ckpt = StableIdentityTrainer(with_config(tiny_components, train={"gradient_checkpointing": True}),
                                     aligned, seed=0)  # same seed: same MLP initialisation
        assert unet.is_gradient_checkpointing  # the switch reached the shared, frozen, eval-mode UNet
        assert not unet.training and not any(p.requires_grad for p in unet.parameters())
        got = gradients(ckpt, sample, noise)
        assert spy.calls > 0  # really recomputed through torch.utils.checkpoint
        for branch_expected, branch_got in zip(expected, got):
            for a, b in zip(branch_expected, branch_got):
                assert a.abs().max() > 0
                torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)

        # inference runs without autograd: no checkpointing even with the flag on
        before = spy.calls
        with torch.no_grad():
            unet(sample.latents, torch.tensor([500]), **ckpt.conditioning(0).unet_kwargs())
        assert spy.calls == before
        # the flag follows the config of the trainer being built (one preset per process)
        StableIdentityTrainer(tiny_components, aligned, seed=0)
        assert not unet.is_gradient_checkpointing
    finally:
        set_gradient_checkpointing(unet, False)


def test_augment_pool_comes_from_the_config(tiny_components, aligned, astronaut, monkeypatch):
    assert StableIdentityTrainer(tiny_components, aligned, seed=0).augment_pool == 64
    assert StableIdentityTrainer(with_config(tiny_components, train={"augment_pool": 5}), aligned,
                                 seed=0).augment_pool == 5
    assert StableIdentityTrainer(with_config(tiny_components, train={"augment_pool": 0}), aligned,
                                 seed=0).augment_pool is None
    assert StableIdentityTrainer(with_config(tiny_components, train={"augment_pool": 5}), aligned,
                                 seed=0, augment_pool=None).augment_pool is None  # the argument wins
    with pytest.raises(ValueError, match="augment_pool"):
        StableIdentityTrainer(tiny_components, aligned, seed=0, augment_pool=0)

    # train_identity (whose signature is unchanged) follows the config: count encoded views
    encoded: list[int] = []
    original = StableIdentityTrainer.encode_views

    def counting(self, count):
        encoded.append(count)
        return original(self, count)

    monkeypatch.setattr(StableIdentityTrainer, "encode_views", counting)
    train_identity(with_config(tiny_components, train={"augment_pool": 3}), astronaut, steps=2 * PREFETCH)
    assert sum(encoded) == 3
    encoded.clear()
    train_identity(with_config(tiny_components, train={"augment_pool": 0}), astronaut, steps=2 * PREFETCH)
    assert sum(encoded) == 2 * PREFETCH  # a fresh augmentation every step


@pytest.mark.parametrize("mode, device, dtype, expected", [
    ("auto", "cuda", torch.bfloat16, (torch.bfloat16, False)),
    ("auto", "cuda", torch.float16, (torch.float16, True)),
    ("auto", "cuda", torch.float32, (None, False)),
    ("auto", "cpu", torch.float32, (None, False)),
    ("no", "cuda", torch.bfloat16, (None, False)),
    ("no", "cuda", torch.float16, (None, True)),
    ("bf16", "cuda", torch.float32, (torch.bfloat16, False)),
    ("bf16", "cpu", torch.float32, (torch.bfloat16, False)),
    ("fp16", "cuda", torch.bfloat16, (torch.float16, True)),
])
def test_mixed_precision_modes(mode, device, dtype, expected):
    assert unet_precision(mode, torch.device(device), dtype) == expected


def test_mixed_precision_paths_train_on_cpu(tiny_components, aligned):
    losses = {}
    for mode in ("auto", "no", "bf16", "fp16"):
        trainer = StableIdentityTrainer(with_config(tiny_components, train={"mixed_precision": mode}),
                                        aligned, seed=0)
        assert (trainer.scaler is not None) == (mode == "fp16")
        before = [p.detach().clone() for p in trainer.trainable_parameters()]
        losses[mode] = [trainer.step() for _ in range(3)]
        assert all(np.isfinite(losses[mode]))
        assert any(not torch.equal(b, p) for b, p in zip(before, trainer.trainable_parameters()))
    assert losses["no"] == losses["auto"]  # float32 on the CPU either way: bit for bit
    for mode in ("bf16", "fp16"):  # same samples, reduced-precision UNet pass
        np.testing.assert_allclose(losses[mode], losses["auto"], rtol=5e-2)


@pytest.mark.parametrize("choice, weights, scaled, expected", [
    ("float32", torch.bfloat16, False, torch.float32),
    ("float32", torch.float16, True, torch.float32),
    ("weights", torch.bfloat16, False, torch.bfloat16),
    ("weights", torch.float32, True, torch.float32),
    ("weights", torch.float16, False, torch.float16),
])
def test_mlp_dtype_modes(choice, weights, scaled, expected):
    assert mlp_dtype(choice, weights, scaled) == expected


def test_mlp_dtype_refuses_float16_mlps_under_a_scaler():
    with pytest.raises(ValueError, match="float16 MLPs under a gradient scaler"):
        mlp_dtype("weights", torch.float16, True)
    with pytest.raises(ValueError, match="float32 or weights"):
        mlp_dtype("half", torch.float32, False)


def test_mlp_dtype_and_celebrity_names_reach_the_trainer(tiny_components, aligned):
    bf16 = dataclasses.replace(tiny_components, **{n: copy.deepcopy(getattr(tiny_components, n)).to(torch.bfloat16)
                                                   for n in ("unet", "vae", "text_encoder",
                                                   "text_encoder_2")})
    trainer = StableIdentityTrainer(with_config(bf16, train={"mlp_dtype": "weights", "mixed_precision": "no",
                                                             "celebrity_names": "extended"}), aligned, seed=0)
    assert {p.dtype for p in trainer.trainable_parameters()} == {torch.bfloat16}
    assert trainer.stats_l.num_names == trainer.stats_g.num_names == 477
    before = [p.detach().clone() for p in trainer.trainable_parameters()]
    assert np.isfinite(trainer.step())
    assert any(not torch.equal(b, p) for b, p in zip(before, trainer.trainable_parameters()))
    clip_l, clip_g = trainer.final_embeddings()
    assert clip_l.dtype == clip_g.dtype == torch.float32
    default = StableIdentityTrainer(tiny_components, aligned, seed=0)
    assert {p.dtype for p in default.trainable_parameters()} == {torch.float32}
    assert default.stats_l.num_names == 326


def test_autograd_records_only_the_path_from_the_mlps(tiny_components, aligned):
    trainer = StableIdentityTrainer(tiny_components, aligned, seed=0)
    sample = trainer.next_sample()
    assert not sample.latents.requires_grad and sample.latents.grad_fn is None  # VAE under no_grad
    terms = trainer.loss(sample, torch.tensor([700]), trainer.draw_noise(sample.latents), 0)
    trainable = {id(p) for p in trainer.trainable_parameters()}
    assert autograd_leaves(terms.total) == trainable
    # the signal rows enter the encoders; positions before them are unaffected by them
    cond = trainer.conditioning(0)
    first = int(trainer.prompts.signal_positions[0, 0])
    (grad,) = torch.autograd.grad(cond.prompt_embeds[:, first:].sum() + cond.text_embeds.sum(),
                                  trainer.trainable_parameters()[:1], retain_graph=True)
    assert grad.abs().sum() > 0
    prefix = cond.prompt_embeds[:, :first].sum()  # causal attention: no path from the rows
    assert all(g is None or not g.any() for g in torch.autograd.grad(
        prefix, trainer.trainable_parameters(), allow_unused=True))


# ----------------------------------------------------------------------------- channels-last, compile

def test_set_compiled_compiles_in_place_with_inductor_and_undoes():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4))
    x = torch.randn(3, 8)
    expected = module(x)
    params = [id(p) for p in module.parameters()]
    assert loading.set_compiled(module, True, "default") is True
    assert loading.compiled_with(module) == ("default", "inductor")
    assert loading.set_compiled(module, True, "default") is False  # idempotent: compiled once
    torch.testing.assert_close(module(x), expected)
    assert [id(p) for p in module.parameters()] == params
    assert list(module.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert loading.set_compiled(module, False) is True
    assert loading.compiled_with(module) is None and module._compiled_call_impl is None
    assert loading.set_compiled(module, False) is False


def test_channels_last_and_attention_follow_the_runtime(tiny_components):
    unet, vae = copy.deepcopy(tiny_components.unet), copy.deepcopy(tiny_components.vae)
    runtime = dataclasses.replace(tiny_components.config.runtime, channels_last=True, attention="default")
    loading.apply_runtime_switches(unet, vae, runtime)
    assert unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert vae.encoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert {type(p).__name__ for p in unet.attn_processors.values()} == {"AttnProcessor"}
    assert loading.set_channels_last(unet, True) is False  # already: nothing copied again
    loading.apply_runtime_switches(unet, vae, tiny_components.config.runtime)
    assert unet.conv_in.weight.is_contiguous() and vae.encoder.conv_in.weight.is_contiguous()
    assert {type(p).__name__ for p in unet.attn_processors.values()} == {"AttnProcessor2_0"}
    for a, b in zip(unet.state_dict().values(), tiny_components.unet.state_dict().values()):
        assert torch.equal(a, b)


def test_loader_applies_the_runtime_switches_once(tiny_config, monkeypatch):
    calls = []
    original = loading.apply_runtime_switches
    monkeypatch.setattr(loading, "apply_runtime_switches",
                        lambda unet, vae, runtime, *device: calls.append(runtime) or original(unet, vae, runtime,
                                                                                               *device))
    cfg = tiny_config.replace(runtime=dataclasses.replace(tiny_config.runtime, channels_last=True))
    parts = loading.load_diffusion(cfg, torch.device("cpu"), torch.float32)
    assert len(calls) == 1 and calls[0].channels_last
    assert parts["unet"].conv_in.weight.is_contiguous(memory_format=torch.channels_last)


def test_generator_with_channels_last_and_compile_draws_the_same_panel(tiny_components, monkeypatch):
    request = ComicRequest(panels=(PanelSpec("Ada Lovelace on a roof", ("Ada Lovelace",)),), seed=5)
    cast = {"Ada Lovelace": ADA}
    base = panel_generator(tiny_components)
    expected = pixels(next(base.generate(request, cast)).image)

    fast = PanelGenerator(with_config(tiny_components, runtime={"channels_last": True}, copy_modules=True))
    assert fast.pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    # NHWC convolutions sum in another order: at most one 8-bit level apart on this CPU
    assert np.abs(pixels(next(fast.generate(request, cast)).image) - expected).max() <= 2

    # runtime.compile through the product path (apply_memory_switches); dynamo's "eager" backend
    # traces the real graph without Inductor's minute-long CPU compile of the UNet
    monkeypatch.setattr(loading, "set_compiled", functools.partial(loading.set_compiled, backend="eager"))
    parts = with_config(tiny_components, runtime={"compile": "on", "compile_scope": "whole"}, copy_modules=True)
    compiled = PanelGenerator(parts)
    assert compiled.pipe.unet is parts.unet  # compiled in place: the same module, not a wrapper
    assert loading.compiled_with(parts.unet) == ("default", "eager")
    for _ in range(2):  # second call reuses the graph
        assert np.array_equal(pixels(next(compiled.generate(request, cast)).image), expected)
    assert loading.compiled_with(tiny_components.unet) is None  # the shared UNet was not touched


# ----------------------------------------------------------------------------- prompt cache

@pytest.fixture()
def generator(tiny_components):
    return PanelGenerator(tiny_components)


def _equal(a: PromptEmbeddings, b: PromptEmbeddings) -> bool:
    pairs = zip(a.as_kwargs().values(), b.as_kwargs().values())
    return all((x is None and y is None) or (x is not None and y is not None and torch.equal(x, y))
               for x, y in pairs)


@pytest.mark.parametrize("negative", ["blurry, lowres", ""])
@pytest.mark.parametrize("guidance", [True, False])
def test_cached_embeddings_equal_one_encode_call(generator, negative, guidance):
    request, (panel,) = generator.prepare(
        ComicRequest(panels=(PanelSpec("Ada Lovelace reads", ("Ada Lovelace",)),), negative_prompt=negative),
        {"Ada Lovelace": ADA})
    direct = generator.binder.encode(panel.bound_prompt, panel.cast, panel.negative_prompt,
                                     do_classifier_free_guidance=guidance, device=generator.execution_device)
    first = generator.prompt_embeddings(panel, guidance)
    again = generator.prompt_embeddings(panel, guidance)
    assert _equal(first, direct) and _equal(again, direct)
    assert again.prompt_embeds is first.prompt_embeds  # served from the cache
    assert generator.prompt_cache.hits >= 1


def test_redraws_and_shared_negatives_skip_encoding_with_identical_pixels(tiny_components, monkeypatch):
    cached = PanelGenerator(tiny_components)
    uncached = PanelGenerator(with_config(tiny_components, generation={"prompt_cache_size": 0}))
    encodes: list[tuple[str, int]] = []
    for gen in (cached, uncached):
        original = gen.binder.encode

        def counting(prompt, cast=(), *args, _original=original, **kwargs):
            encodes.append((prompt, len(cast)))
            return _original(prompt, cast, *args, **kwargs)

        monkeypatch.setattr(gen.binder, "encode", counting)
    cast = {"Ada Lovelace": ADA}
    request = ComicRequest(panels=(PanelSpec("Ada Lovelace reads", ("Ada Lovelace",)),
                                   PanelSpec("a quiet street"),
                                   PanelSpec("Ada Lovelace sleeps", ("Ada Lovelace",))),
                           seed=11, negative_prompt="blurry")
    drawn = [pixels(r.image) for r in cached.generate(request, cast)]
    # three prompts, and the request's one negative prompt encoded once, not per panel
    assert len(encodes) == 4 and sum(1 for text, _ in encodes if text.startswith("blurry")) == 1
    encodes.clear()
    redrawn = [pixels(r.image) for r in cached.redraw(request, 2, identities=cast)]
    assert encodes == []  # the redraw reused both embeddings
    assert np.array_equal(redrawn[0], drawn[2])
    plain = [pixels(r.image) for r in uncached.generate(request, cast)]
    assert len(encodes) == 6  # without the cache: prompt + negative per panel
    assert all(np.array_equal(a, b) for a, b in zip(drawn, plain))


def test_cache_key_is_the_identity_vectors_not_the_name(generator):
    other = dataclasses.replace(ADA, clip_l=ADA.clip_l + 0.01)
    request = ComicRequest(panels=(PanelSpec("Ada Lovelace reads", ("Ada Lovelace",)),))
    _, (a,) = generator.prepare(request, {"Ada Lovelace": ADA})
    _, (b,) = generator.prepare(request, {"Ada Lovelace": other})
    assert cast_key(a.cast) != cast_key(b.cast)
    assert cast_key(a.cast) == cast_key((dataclasses.replace(ADA, clip_l=ADA.clip_l.clone()),))
    assert not torch.equal(generator.prompt_embeddings(a, False).prompt_embeds,
                           generator.prompt_embeddings(b, False).prompt_embeds)
    assert tensor_digest(torch.zeros(2, 3)) != tensor_digest(torch.zeros(3, 2))
    assert tensor_digest(torch.zeros(2, 3)) != tensor_digest(torch.zeros(2, 3, dtype=torch.bfloat16))


def test_prompt_cache_is_a_bounded_thread_safe_lru():
    cache = PromptCache(maxsize=2)
    made = []

    def make(key):
        made.append(key)
        return PromptEmbeddings(torch.tensor([float(len(made))]), torch.zeros(1))

    for key in ("a", "b", "a", "c", "b"):  # "b" was evicted by "c" (least recently used)
        cache.get(key, functools.partial(make, key))
    assert made == ["a", "b", "c", "b"] and len(cache) == 2 and (cache.hits, cache.misses) == (1, 4)
    off = PromptCache(maxsize=0)
    for _ in range(3):
        off.get("a", functools.partial(make, "a"))
    assert len(off) == 0 and off.misses == 3
    with pytest.raises(ValueError):
        PromptCache(maxsize=-1)

    shared = PromptCache(maxsize=3)
    errors = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(200):
                key = int(rng.integers(0, 5))
                value = shared.get(key, lambda k=key: PromptEmbeddings(torch.tensor([float(k)]),
                                                                       torch.zeros(1)))
                assert value.prompt_embeds.item() == key
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(shared) <= 3 and shared.hits + shared.misses == 1600


def test_warm_up_draws_one_panel_of_the_preset_shape(tiny_components, monkeypatch):
    generator = PanelGenerator(tiny_components)
    shapes = []
    original = generator.draw

    def spy(request, panel):
        shapes.append((request.width, request.height, request.candidates, request.steps))
        return original(request, panel)

    monkeypatch.setattr(generator, "draw", spy)
    assert generator.warm_up() > 0
    gen = tiny_components.config.generation
    assert shapes == [(gen.width, gen.height, gen.candidates, 1)]
    assert len(generator.prompt_cache) == 2  # its prompt and the preset's negative prompt
