"""The full-size SDXL architecture used by the GPU benchmarks (checked on the meta device)."""

from __future__ import annotations

import pytest
import torch

from bench.arch import (PUBLISHED_PARAMETERS, build_arch, build_sdxl_random, count_parameters,
                        default_dtype, sdxl_meta_unet, sdxl_parameter_counts)


def test_parameter_counts_equal_published_sdxl_base_1_0():
    counts = sdxl_parameter_counts()
    assert counts == PUBLISHED_PARAMETERS
    # the numbers people quote: UNet 2.567 B, encoders 123 M + 695 M, VAE 83.7 M
    assert round(counts["unet"] / 1e9, 3) == 2.567
    assert round(counts["text_encoder"] / 1e6) == 123
    assert round(counts["text_encoder_2"] / 1e6) == 695
    assert round(counts["vae"] / 1e6, 1) == 83.7


def test_default_dtype_is_restored_even_on_error():
    before = torch.get_default_dtype()
    with pytest.raises(RuntimeError):
        with default_dtype(torch.bfloat16):
            assert torch.get_default_dtype() == torch.bfloat16
            raise RuntimeError("boom")
    assert torch.get_default_dtype() == before


def test_build_sdxl_random_is_wired_like_the_sdxl_preset():
    c = build_sdxl_random(torch.bfloat16, "meta", face_models=False)
    assert c.device.type == "meta" and c.dtype == torch.bfloat16
    for name in ("text_encoder", "text_encoder_2", "unet", "vae"):
        module = getattr(c, name)
        assert module.dtype == torch.bfloat16, name
        assert not module.training and not any(p.requires_grad for p in module.parameters())
        assert count_parameters(module) == PUBLISHED_PARAMETERS[name]
    assert c.fr_vit.dtype == torch.float32 and c.fr_vit.config.hidden_size == 768
    unet = c.unet.config
    assert unet.cross_attention_dim == 2048 == c.text_encoder.config.hidden_size + c.text_encoder_2.config.hidden_size
    assert unet.projection_class_embeddings_input_dim == 2816 == c.text_encoder_2.config.projection_dim + 6 * unet.addition_time_embed_dim
    assert c.vae.config.scaling_factor == 0.13025
    # real CLIP tokenizers; pooling fixed to the real end token (the pooled-output trap)
    assert c.tokenizer("a photo of").input_ids == [49406, 320, 1125, 539, 49407]
    assert c.tokenizer_2.pad_token == "!"
    assert c.text_encoder.config.eos_token_id == c.tokenizer.eos_token_id == 49407
    assert c.text_encoder_2.config.eos_token_id == 49407
    assert type(c.scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert c.config.runtime.dtype == "bfloat16"
    assert set(c.pipeline_parts()) == {"vae", "text_encoder", "text_encoder_2", "tokenizer",
                                       "tokenizer_2", "unet", "scheduler"}


def test_unet_flops_at_1024_are_the_few_tflop_reference_md_expects():
    from bench.bench_sdxl_random import unet_flops

    unet = sdxl_meta_unet().requires_grad_(False)
    fwd = unet_flops(unet, 1024)
    assert 6.7e12 < fwd < 6.85e12  # 6.76 TFLOP per image per step
    assert 1.55e12 < unet_flops(unet, 512) < 1.65e12


def test_preset_arch_is_a_fresh_copy_in_the_requested_dtype(tiny_components):
    c = build_arch("preset", "cpu", torch.bfloat16, preset="tiny")
    assert c is not tiny_components and c.unet is not tiny_components.unet
    assert c.unet.dtype == torch.bfloat16 and tiny_components.unet.dtype == torch.float32
    with pytest.raises(ValueError, match="unknown arch"):
        build_arch("sdxl-real", "cpu", torch.float32)
