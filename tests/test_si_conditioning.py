"""Training conditioning == what StableDiffusionXLPipeline computes at inference for the same words."""

from __future__ import annotations

import copy

import pytest
import torch
from diffusers import StableDiffusionXLPipeline

from stableidentity.conditioning import (SIGNAL_WORDS, TEMPLATES, add_time_ids, sdxl_conditioning,
                                         tokenize_template, tokenize_templates)


@pytest.fixture(scope="module")
def signal_rows():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 32, generator=g) * 0.05, torch.randn(2, 64, generator=g) * 0.05


@pytest.fixture(scope="module")
def inference_pipe(tiny_components, signal_rows):
    """The inference path: the signal words registered as tokens on COPIES of the encoders."""
    parts = tiny_components.pipeline_parts()
    for key in ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2"):
        parts[key] = copy.deepcopy(parts[key])
    pipe = StableDiffusionXLPipeline(**parts)
    v_l, v_g = signal_rows
    pipe.load_textual_inversion(v_l, token=list(SIGNAL_WORDS), text_encoder=pipe.text_encoder,
                                tokenizer=pipe.tokenizer)
    pipe.load_textual_inversion(v_g, token=list(SIGNAL_WORDS), text_encoder=pipe.text_encoder_2,
                                tokenizer=pipe.tokenizer_2)
    return pipe


def test_training_conditioning_equals_inference_conditioning(tiny_components, inference_pipe, signal_rows):
    v_l, v_g = signal_rows
    prompts = tokenize_templates(tiny_components.tokenizer, tiny_components.tokenizer_2)
    assert len(prompts.templates) == 81
    time_ids = add_time_ids((64, 64), (0, 0), (64, 64))
    for index in sorted({t: i for i, t in enumerate(TEMPLATES)}.values()):   # the 57 distinct ones
        prompt = prompts.prompt(index)
        assert prompt == TEMPLATES[index].format("v1* v2*")
        with torch.no_grad():
            embeds, _, pooled, _ = inference_pipe.encode_prompt(prompt, device="cpu", num_images_per_prompt=1,
                                                                do_classifier_free_guidance=False)
            ours = sdxl_conditioning(tiny_components.text_encoder, tiny_components.text_encoder_2, prompts,
                                     torch.tensor([index]), v_l[None], v_g[None], time_ids)
        assert ours.prompt_embeds.shape == embeds.shape == (1, 77, 96)
        torch.testing.assert_close(ours.prompt_embeds, embeds, rtol=0, atol=1e-6)
        # the pooled state comes from a last layer run on the first eos+1 positions only (causal
        # attention makes that exact in real arithmetic; the kernels round differently: ~5e-7)
        torch.testing.assert_close(ours.text_embeds, pooled, rtol=1e-5, atol=2e-6)
        assert pooled.abs().max() > 0.1
    expected_ids = inference_pipe._get_add_time_ids((64, 64), (0, 0), (64, 64), dtype=torch.float32,
                                                    text_encoder_projection_dim=32)
    assert torch.equal(time_ids, expected_ids)


def test_templates_are_the_81_official_ones():
    """Source: ``datasets_face/face_id.py`` of qinghew/StableIdentity (commit 7a9a67e), whose list of
    81 (57 distinct) was hashed into TEMPLATES_SHA256 when this code was written."""
    from stableidentity.templates import PHOTO_TEMPLATES, TEMPLATES_SHA256, templates_digest

    assert TEMPLATES == tuple(TEMPLATES) and len(TEMPLATES) == 81 and len(set(TEMPLATES)) == 57
    assert templates_digest(TEMPLATES) == TEMPLATES_SHA256
    assert TEMPLATES[:27] == PHOTO_TEMPLATES and TEMPLATES[27] == "an illustration of a {}"
    assert TEMPLATES[54] == "a depiction of a {}" and TEMPLATES[29] == "a cropped photo of the {}"
    assert all(t.count("{}") == 1 and t.endswith("{}") for t in TEMPLATES)
    assert templates_digest(TEMPLATES[:-1]) != TEMPLATES_SHA256


def test_token_ids_match_a_tokenizer_with_registered_words(tiny_components, inference_pipe):
    prompts = tokenize_templates(tiny_components.tokenizer, tiny_components.tokenizer_2)
    for tokenizer, ids in ((inference_pipe.tokenizer, prompts.input_ids),
                           (inference_pipe.tokenizer_2, prompts.input_ids_2)):
        word_ids = tokenizer.convert_tokens_to_ids(list(SIGNAL_WORDS))
        for index in range(len(prompts.templates)):
            reference = tokenizer(prompts.prompt(index), padding="max_length", max_length=77,
                                  return_tensors="pt").input_ids[0]
            ours = ids[index].clone()
            ours[prompts.signal_positions[index]] = torch.tensor(word_ids)
            assert torch.equal(ours, reference)
            assert reference[prompts.eos_positions[index]] == tokenizer.eos_token_id


def test_the_signal_words_change_the_conditioning_and_take_gradients(tiny_components):
    prompts = tokenize_templates(tiny_components.tokenizer, tiny_components.tokenizer_2)
    v_l = torch.zeros(1, 2, 32, requires_grad=True)
    v_g = torch.zeros(1, 2, 64, requires_grad=True)
    time_ids = add_time_ids((64, 64), (0, 0), (64, 64))
    cond = sdxl_conditioning(tiny_components.text_encoder, tiny_components.text_encoder_2, prompts,
                             torch.tensor([0]), v_l, v_g, time_ids)
    (cond.prompt_embeds.sum() + cond.text_embeds.sum()).backward()
    assert v_l.grad.abs().sum() > 0 and v_g.grad.abs().sum() > 0
    other = sdxl_conditioning(tiny_components.text_encoder, tiny_components.text_encoder_2, prompts,
                              torch.tensor([0]), v_l.detach() + 0.05, v_g.detach(), time_ids)
    first = prompts.signal_positions[0, 0]
    # causal attention: tokens before the signal words cannot see them, tokens after can
    assert torch.equal(other.prompt_embeds[0, :first], cond.prompt_embeds[0, :first].detach())
    assert not torch.allclose(other.prompt_embeds[0, first:], cond.prompt_embeds[0, first:].detach())


def test_shared_tokenizers_and_encoders_are_not_modified(tiny_components):
    sizes = (len(tiny_components.tokenizer), len(tiny_components.tokenizer_2),
             tiny_components.text_encoder.get_input_embeddings().weight.shape,
             tiny_components.text_encoder_2.get_input_embeddings().weight.shape)
    tokenize_templates(tiny_components.tokenizer, tiny_components.tokenizer_2)
    assert sizes == (49408, 49408, (49408, 32), (49408, 64))
    assert "v1*" not in tiny_components.tokenizer.get_vocab()
    assert not tiny_components.text_encoder._forward_hooks
    # Panel binding may leave its inert per-thread hook on the token embedding; with no rows
    # active it must return exactly the stored table rows.
    embedding = tiny_components.text_encoder.get_input_embeddings()
    ids = torch.tensor([[49406, 320, 1125, 539, 49407]])
    with torch.no_grad():
        assert torch.equal(embedding(ids), embedding.weight[ids])


def test_template_must_have_one_placeholder(tiny_components):
    with pytest.raises(ValueError, match="exactly one"):
        tokenize_template(tiny_components.tokenizer, "a photo of a person")
    ids, positions, eos = tokenize_template(tiny_components.tokenizer, "{} at the beach")
    assert positions == [1, 2] and ids[eos] == tiny_components.tokenizer.eos_token_id
