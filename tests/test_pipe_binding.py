"""Binding names to identities: text replacement, signal rows in both encoders, isolation."""

from __future__ import annotations

import copy
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from pipelines.binding import (BindingError, SignalWordBinder, bind_text, signal_pair, signal_rows,
                               signal_words)
from identities.library import Identity

D1, D2 = 32, 64  # tiny encoder widths


def person(name: str, seed: int) -> Identity:
    """A real library Identity with small random vectors (the tiny encoders' widths)."""
    g = torch.Generator().manual_seed(seed)
    return Identity(name=name, pronouns="", clip_l=torch.randn(2, D1, generator=g) * 0.05,
                    clip_g=torch.randn(2, D2, generator=g) * 0.05, metadata={}, folder=Path("."))


def fingerprint(components):
    """Everything other code relies on: tokenizers, weights, table sizes, module identities."""
    modules = {n: getattr(components, n) for n in ("text_encoder", "text_encoder_2", "unet", "vae")}
    return dict(
        tokenizers=[(len(t), t.get_added_vocab()) for t in (components.tokenizer, components.tokenizer_2)],
        embeddings=[id(m.get_input_embeddings()) for m in (components.text_encoder, components.text_encoder_2)],
        state={n: {k: v.clone() for k, v in m.state_dict().items()} for n, m in modules.items()},
        vocab=[m.config.vocab_size for m in (components.text_encoder, components.text_encoder_2)],
        processors=[type(p).__name__ for p in components.unet.attn_processors.values()],
        scheduler=dict(components.scheduler.config))


def assert_same(before, after):
    for key in before:
        if key == "state":
            for name, tensors in before["state"].items():
                assert tensors.keys() == after["state"][name].keys(), name
                for k, v in tensors.items():
                    assert torch.equal(v, after["state"][name][k]), f"{name}.{k} changed"
        else:
            assert before[key] == after[key], key


@pytest.fixture(autouse=True)
def components_untouched(tiny_components):
    before = fingerprint(tiny_components)
    yield
    assert_same(before, fingerprint(tiny_components))


@pytest.fixture(scope="module")
def binder(tiny_components):
    return SignalWordBinder(tiny_components)


@pytest.fixture(scope="module")
def vanilla(tiny_components):
    from diffusers import StableDiffusionXLPipeline

    return StableDiffusionXLPipeline(**tiny_components.pipeline_parts())


# ----------------------------------------------------------------------------- text


def test_signal_words_follow_the_seed_numbering():
    assert signal_pair(0) == ("v1*", "v2*") and signal_pair(2) == ("v5*", "v6*")
    assert signal_words(3) == ["v1*", "v2*", "v3*", "v4*", "v5*", "v6*"]


def test_full_names_are_replaced_case_insensitively_with_possessives():
    names = ["Ada Lovelace"]
    assert bind_text("Ada Lovelace walked.", names) == "v1* v2* walked."
    assert bind_text("ADA lovelace's cat met ada  Lovelace.", names) == "v1* v2*'s cat met v1* v2*."
    assert bind_text("Ada\nLovelace\u2019s hat", names) == "v1* v2*\u2019s hat"
    # whole words only: longer names, hyphenated or apostrophe-prefixed words are left alone
    for text in ("Ada Lovelaces", "Ada Lovelace-Byron", "O'Ada Lovelace", "Lady Ada", "Adam Lovelace"):
        assert bind_text(text, names) == text


def test_names_with_apostrophes_and_hyphens():
    names = ["Conan O'Brien", "Mary-Kate Olsen"]
    assert bind_text("Conan O\u2019Brien met Mary-Kate Olsen.", names) == "v1* v2* met v3* v4*."
    assert bind_text("Kate Olsen waved.", ["Kate Olsen"]) == "v1* v2* waved."
    assert bind_text("Mary-Kate Olsen waved.", ["Kate Olsen"]) == "Mary-Kate Olsen waved."


def test_two_identities_bind_in_cast_order():
    text = "Hugh Jackman and Taylor Swift walked to school."
    assert bind_text(text, ["Hugh Jackman", "Taylor Swift"]) == "v1* v2* and v3* v4* walked to school."
    assert bind_text(text, ["Taylor Swift", "Hugh Jackman"]) == "v3* v4* and v1* v2* walked to school."
    # a longer name containing a shorter one wins
    assert bind_text("Ann Lee Smith and Ann Lee", ["Ann Lee", "Ann Lee Smith"]) == "v3* v4* and v1* v2*"


def test_reserved_words_duplicates_and_too_many_are_rejected(binder):
    with pytest.raises(BindingError, match="reserved word 'v1\\*'"):
        bind_text("a photo of v1* v2*", [])
    with pytest.raises(BindingError, match="listed twice"):
        bind_text("x", ["Ada Lovelace", "ada  lovelace"])
    with pytest.raises(BindingError, match="at most 3"):
        binder.bind("x", ["A B", "C D", "E F", "G H"])
    with pytest.raises(BindingError, match="binds only 1 identity"):
        binder.encode("v1* v2* and v3* v4*", [person("A B", 1)])
    with pytest.raises(BindingError, match="negative prompt contains the reserved word 'V1\\*'"):
        binder.encode("v1* v2*", [person("A B", 1)], negative_prompt="ugly V1*")


def test_identities_for_another_model_are_rejected(binder):
    wrong = replace(person("Ada Lovelace", 1), clip_l=torch.zeros(2, 768), clip_g=torch.zeros(2, 1280))
    with pytest.raises(BindingError, match="clip_l of shape \\(2, 768\\).*\\(2, 32\\)"):
        binder.check_identity(wrong)
    nan = replace(person("Ada Lovelace", 1), clip_l=torch.full((2, D1), float("nan")))
    with pytest.raises(BindingError, match="non-finite"):
        binder.encode_panel("Ada Lovelace", [nan])


# ----------------------------------------------------------------------------- rows


def test_pool_tokens_live_in_the_binders_own_tokenizers(binder, tiny_components):
    for tokenizer, ids in ((binder.tokenizer, binder.token_ids), (binder.tokenizer_2, binder.token_ids_2)):
        assert ids == tuple(range(49408, 49414))
        assert tokenizer("a photo of v1* v2*").input_ids == [49406, 320, 1125, 539, 49408, 49409, 49407]
    assert len(tiny_components.tokenizer) == len(tiny_components.tokenizer_2) == 49408


def test_rows_equal_the_stored_vectors_exactly_in_both_encoders(binder, tiny_components):
    a, b = person("Ada Lovelace", 1), person("Alan Turing", 2)
    table_1 = tiny_components.text_encoder.get_input_embeddings()
    table_2 = tiny_components.text_encoder_2.get_input_embeddings()
    with binder.bound([a, b]):
        rows_1 = table_1(torch.tensor([binder.token_ids]))[0]
        rows_2 = table_2(torch.tensor([binder.token_ids_2]))[0]
        normal = table_1(torch.tensor([[320, 1125]]))[0]
    assert torch.equal(rows_1[0:2], a.clip_l) and torch.equal(rows_1[2:4], b.clip_l)
    assert torch.equal(rows_2[0:2], a.clip_g) and torch.equal(rows_2[2:4], b.clip_g)
    assert not rows_1[4:].any() and not rows_2[4:].any()  # unused slots are zero
    assert torch.equal(normal, table_1.weight[[320, 1125]])  # real words read the real table
    with pytest.raises(IndexError):  # outside the block the pool ids do not exist
        table_1(torch.tensor([binder.token_ids]))


def test_identity_free_prompts_encode_exactly_as_before(binder, vanilla, tiny_components):
    prompt, negative = "a photo of a cat at the beach", "blurry"
    before = vanilla.encode_prompt(prompt, negative_prompt=negative, device=tiny_components.device)
    a = person("Ada Lovelace", 1)
    bound = binder.encode(prompt, [a], negative)
    binder.encode_panel("Ada Lovelace walks", [a], negative_prompt=negative)
    after = vanilla.encode_prompt(prompt, negative_prompt=negative, device=tiny_components.device)
    for x, y, z in zip(before, after, (bound.prompt_embeds, bound.negative_prompt_embeds,
                                       bound.pooled_prompt_embeds, bound.negative_pooled_prompt_embeds)):
        assert torch.equal(x, y) and torch.equal(x, z)


def test_the_identity_changes_the_encoding_only_from_its_signal_words_on(binder):
    text = "a photo of Ada Lovelace at the beach"  # bound: <bos> a photo of v1* v2* at ...
    a, b = person("Ada Lovelace", 1), person("Ada Lovelace", 2)
    ea, eb = binder.encode_panel(text, [a]), binder.encode_panel(text, [b])
    first_signal = 4
    assert ea.prompt_embeds.shape == (1, 77, D1 + D2)
    # CLIP's causal mask: positions before the first signal word cannot see it, in both encoders
    assert torch.equal(ea.prompt_embeds[:, :first_signal], eb.prompt_embeds[:, :first_signal])
    for half in (slice(0, D1), slice(D1, D1 + D2)):
        assert not torch.allclose(ea.prompt_embeds[:, first_signal:, half], eb.prompt_embeds[:, first_signal:, half])
    assert not torch.allclose(ea.pooled_prompt_embeds, eb.pooled_prompt_embeds)
    assert torch.equal(ea.negative_prompt_embeds, eb.negative_prompt_embeds)  # negatives unbound
    again = binder.encode_panel(text, [a])
    assert torch.equal(again.prompt_embeds, ea.prompt_embeds)


def test_overlay_equals_a_table_resized_with_the_rows_written(binder, tiny_components):
    """The reference method (resize both tables, write the rows) on private copies."""
    from diffusers import StableDiffusionXLPipeline

    a, b = person("Ada Lovelace", 1), person("Alan Turing", 2)
    enc_1 = copy.deepcopy(tiny_components.text_encoder)
    enc_2 = copy.deepcopy(tiny_components.text_encoder_2)
    for encoder, ids, key in ((enc_1, binder.token_ids, "clip_l"), (enc_2, binder.token_ids_2, "clip_g")):
        encoder.resize_token_embeddings(max(ids) + 1, mean_resizing=False)
        with torch.no_grad():
            encoder.get_input_embeddings().weight[list(ids[:4])] = torch.cat([getattr(a, key), getattr(b, key)])
    reference = StableDiffusionXLPipeline(vae=None, text_encoder=enc_1, text_encoder_2=enc_2,
                                          tokenizer=binder.tokenizer, tokenizer_2=binder.tokenizer_2,
                                          unet=None, scheduler=None)
    text = "Alan Turing hands Ada Lovelace a letter"
    bound = binder.bind(text, [a, b])
    assert bound == "v3* v4* hands v1* v2* a letter"
    expected = reference.encode_prompt(bound, device=tiny_components.device, negative_prompt="ugly")
    got = binder.encode(bound, [a, b], "ugly")
    assert torch.equal(expected[0], got.prompt_embeds)
    assert torch.equal(expected[2], got.pooled_prompt_embeds)


def test_hundreds_of_identities_reuse_the_same_pool(binder, tiny_components):
    text = "Ada Lovelace and Alan Turing talk"
    sizes = set()
    for i in range(300):
        cast = [person("Ada Lovelace", 1000 + i), person("Alan Turing", 5000 + i)]
        with binder.bound(cast):
            pass
        sizes.add((len(binder.tokenizer), len(binder.tokenizer_2),
                   tiny_components.text_encoder.get_input_embeddings().num_embeddings))
    assert sizes == {(49414, 49414, 49408)}
    last = binder.encode_panel(text, cast)
    fresh = SignalWordBinder(tiny_components).encode_panel(text, cast)
    assert torch.equal(last.prompt_embeds, fresh.prompt_embeds)  # no stale state either


def test_overlay_rows_are_private_to_each_thread(tiny_components, binder):
    table = tiny_components.text_encoder.get_input_embeddings()
    start = binder.token_ids[0]
    rows = {"a": torch.full((6, D1), 1.0), "b": torch.full((6, D1), 2.0)}
    seen = {}
    inside, done = threading.Barrier(3), threading.Barrier(3)

    def worker(key):
        with signal_rows(table, start, rows[key]):
            inside.wait()  # both threads have their own rows active at the same time
            seen[key] = table(torch.tensor([[start, 320]]))[0].clone()
            done.wait()

    threads = [threading.Thread(target=worker, args=(k,)) for k in rows]
    for t in threads:
        t.start()
    inside.wait()
    plain = table(torch.tensor([[320]]))[0]  # the main thread sees the plain table meanwhile
    done.wait()
    for t in threads:
        t.join()
    assert torch.equal(seen["a"][0], rows["a"][0]) and torch.equal(seen["b"][0], rows["b"][0])
    assert torch.equal(seen["a"][1], plain[0]) and torch.equal(seen["b"][1], plain[0])


def test_concurrent_encodes_match_single_threaded_results(binder):
    text = "Ada Lovelace writes a program"
    casts = {k: [person("Ada Lovelace", seed)] for k, seed in (("a", 11), ("b", 22))}
    expected = {k: binder.encode_panel(text, cast).prompt_embeds for k, cast in casts.items()}
    errors, start = [], threading.Barrier(2)

    def worker(key):
        start.wait()
        for _ in range(15):
            got = binder.encode_panel(text, casts[key]).prompt_embeds
            if not torch.equal(got, expected[key]):
                errors.append(key)

    threads = [threading.Thread(target=worker, args=(k,)) for k in casts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert not torch.equal(expected["a"], expected["b"])
