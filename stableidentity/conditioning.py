"""SDXL prompt conditioning for training, identical to what the inference pipeline computes.

At inference the signal words ``v1* v2*`` are tokens added to both tokenizers whose embedding rows
hold the learned vectors, and ``StableDiffusionXLPipeline.encode_prompt`` builds:

* ``prompt_embeds`` (B, 77, d1 + d2): the penultimate hidden states (``hidden_states[-2]``, before
  the final LayerNorm) of both text encoders, concatenated;
* ``text_embeds`` (B, proj): encoder 2's projection of its final-LayerNorm state at the first
  end-of-text token (the loader fixes ``eos_token_id`` so pooling never lands on a signal word);
* ``time_ids`` (B, 6): original size, crop top-left, target size.

Training must see the same function of the same vectors, but the shared tokenizers and encoders
must not change. So templates are tokenised around two placeholder positions and the text
encoders are run here from their own sub-modules (token embedding -> rows at the placeholders
replaced by the signal vectors, cast to the encoder's dtype as a stored row would be -> position
embedding -> causal transformer layers -> final LayerNorm -> pooling -> projection). Nothing is
registered, hooked or resized, so concurrent inference on the same components is unaffected; a
test proves equality with the pipeline after ``load_textual_inversion`` on copies. Encoder 1 stops
after its penultimate layer, since its last layer never reaches SDXL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from transformers import CLIPTextModel, CLIPTextModelWithProjection, PreTrainedTokenizerBase
from transformers.masking_utils import create_causal_mask

from stableidentity.templates import TEMPLATES

#: The signal words of the first identity (identity i is bound to ``v{2i+1}* v{2i+2}*``).
SIGNAL_WORDS: tuple[str, str] = ("v1*", "v2*")
#: Token id written at the signal positions before their rows are replaced (never looked up).
PLACEHOLDER_ID = 0


@dataclass(frozen=True)
class TokenizedPrompts:
    """Templates tokenised for both SDXL tokenizers around the signal-word positions.

    Attributes:
        templates: the N templates.
        input_ids: int64 (N, 77) for tokenizer 1 (padded with its pad token).
        input_ids_2: int64 (N, 77) for tokenizer 2 (SDXL pads it with "!").
        signal_positions: int64 (N, k) positions of the k signal words (same for both tokenizers).
        eos_positions: int64 (N,) position of the end-of-text token.
        eos_index: the same positions as Python ints (no device read-back needed).
    """

    templates: tuple[str, ...]
    input_ids: torch.Tensor
    input_ids_2: torch.Tensor
    signal_positions: torch.Tensor
    eos_positions: torch.Tensor
    eos_index: tuple[int, ...]

    def to(self, device: torch.device | str) -> "TokenizedPrompts":
        return TokenizedPrompts(self.templates, self.input_ids.to(device), self.input_ids_2.to(device),
                                self.signal_positions.to(device), self.eos_positions.to(device),
                                self.eos_index)

    def prompt(self, index: int, words: Sequence[str] = SIGNAL_WORDS) -> str:
        """Template ``index`` with the signal words filled in (what inference would be given)."""
        return self.templates[index].format(" ".join(words))


def tokenize_template(tokenizer: PreTrainedTokenizerBase, template: str,
                      num_signal: int = 2) -> tuple[list[int], list[int], int]:
    """Token ids of ``template`` with ``num_signal`` placeholder tokens where ``{}`` stands.

    The text before and after ``{}`` is tokenised separately, as a tokenizer with the signal words
    registered as added tokens does. Returns (ids padded to ``model_max_length``, signal positions,
    end-token position).
    """
    if template.count("{}") != 1:
        raise ValueError(f"template {template!r} must contain exactly one '{{}}'")
    prefix, suffix = template.split("{}")

    def encode(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False).input_ids if text.strip() else []

    before, after = encode(prefix), encode(suffix)
    length = tokenizer.model_max_length
    body = before + [PLACEHOLDER_ID] * num_signal + after
    if len(body) + 2 > length:
        raise ValueError(f"template {template!r} is longer than {length} tokens")
    ids = [tokenizer.bos_token_id] + body + [tokenizer.eos_token_id]
    ids += [tokenizer.pad_token_id] * (length - len(ids))
    positions = list(range(1 + len(before), 1 + len(before) + num_signal))
    return ids, positions, 1 + len(body)


def tokenize_templates(tokenizer: PreTrainedTokenizerBase, tokenizer_2: PreTrainedTokenizerBase,
                       templates: Sequence[str] = TEMPLATES, num_signal: int = 2) -> TokenizedPrompts:
    """Tokenise every template for both tokenizers (done once per training run)."""
    rows_1, rows_2, positions, eos = [], [], [], []
    for template in templates:
        ids_1, pos_1, eos_1 = tokenize_template(tokenizer, template, num_signal)
        ids_2, pos_2, eos_2 = tokenize_template(tokenizer_2, template, num_signal)
        if pos_1 != pos_2 or eos_1 != eos_2:
            raise ValueError("the two tokenizers split the template differently")
        rows_1.append(ids_1)
        rows_2.append(ids_2)
        positions.append(pos_1)
        eos.append(eos_1)
    return TokenizedPrompts(templates=tuple(templates), input_ids=torch.tensor(rows_1),
                            input_ids_2=torch.tensor(rows_2), signal_positions=torch.tensor(positions),
                            eos_positions=torch.tensor(eos), eos_index=tuple(eos))


def _text_model(encoder: CLIPTextModel | CLIPTextModelWithProjection) -> CLIPTextModel:
    return encoder.text_model if isinstance(encoder, CLIPTextModelWithProjection) else encoder


def encode_with_signal_embeddings(encoder: CLIPTextModel | CLIPTextModelWithProjection,
                                  input_ids: torch.Tensor, signal_positions: torch.Tensor,
                                  signal_embeddings: torch.Tensor, eos_positions: torch.Tensor | None = None,
                                  pooled_length: int | None = None
                                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run a CLIP text encoder with the signal rows of the token embedding replaced.

    Only the penultimate layer's states (all positions) and the pooled end token are needed, so the
    last layer runs on the first ``pooled_length`` positions only: with causal attention the end
    token's state does not depend on the padding after it.

    Args:
        encoder: ``CLIPTextModel`` (SDXL encoder 1) or ``CLIPTextModelWithProjection`` (encoder 2).
        input_ids: int64 (B, L).
        signal_positions: int64 (B, k) positions whose token embeddings are replaced.
        signal_embeddings: (B, k, d) the rows to use there (gradients flow into them).
        eos_positions: int64 (B,) end-token positions; give them to get the pooled output.
        pooled_length: ``max(eos_positions) + 1`` if known on the host (else read from the tensor).
    Returns:
        (penultimate hidden states (B, L, d), pooled (B, proj) for encoder 2 / (B, d) for encoder 1,
        or None without ``eos_positions``).
    """
    model = _text_model(encoder)
    embeddings = model.embeddings
    tokens = embeddings.token_embedding(input_ids)
    batch = torch.arange(input_ids.shape[0], device=input_ids.device).unsqueeze(1).expand_as(signal_positions)
    tokens = tokens.index_put((batch, signal_positions), signal_embeddings.to(tokens.dtype))
    position_ids = embeddings.position_ids[:, :input_ids.shape[1]]
    hidden = tokens + embeddings.position_embedding(position_ids)
    mask = create_causal_mask(config=model.config, inputs_embeds=hidden, attention_mask=None, cache=None)
    layers = model.encoder.layers
    for layer in layers[:-1]:
        hidden = layer(hidden, mask, is_causal=True)
    penultimate = hidden
    if eos_positions is None:
        return penultimate, None
    length = int(eos_positions.max()) + 1 if pooled_length is None else pooled_length
    head = hidden[:, :length]
    head_mask = create_causal_mask(config=model.config, inputs_embeds=head, attention_mask=None, cache=None)
    last = model.final_layer_norm(layers[-1](head, head_mask, is_causal=True))
    pooled = last[torch.arange(last.shape[0], device=last.device), eos_positions]
    if isinstance(encoder, CLIPTextModelWithProjection):
        pooled = encoder.text_projection(pooled)
    return penultimate, pooled


@dataclass
class SDXLConditioning:
    """What the SDXL UNet is conditioned on.

    Attributes:
        prompt_embeds: (B, 77, d1 + d2) ``encoder_hidden_states``.
        text_embeds: (B, proj) pooled projection of encoder 2.
        time_ids: (B, 6) original size, crop top-left, target size.
    """

    prompt_embeds: torch.Tensor
    text_embeds: torch.Tensor
    time_ids: torch.Tensor

    def unet_kwargs(self) -> dict:
        """``encoder_hidden_states`` and ``added_cond_kwargs`` for ``UNet2DConditionModel``."""
        return dict(encoder_hidden_states=self.prompt_embeds,
                    added_cond_kwargs={"text_embeds": self.text_embeds, "time_ids": self.time_ids})


def add_time_ids(original_size: tuple[int, int], crop_top_left: tuple[int, int],
                 target_size: tuple[int, int], *, batch_size: int = 1, dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, 6) SDXL micro-conditioning, laid out as the pipeline's ``_get_add_time_ids``:
    (orig_h, orig_w, crop_top, crop_left, target_h, target_w)."""
    values = list(original_size) + list(crop_top_left) + list(target_size)
    return torch.tensor([values], dtype=dtype, device=device).expand(batch_size, 6).contiguous()


def sdxl_conditioning(text_encoder: CLIPTextModel, text_encoder_2: CLIPTextModelWithProjection,
                      prompts: TokenizedPrompts, index: int | torch.Tensor, signal_l: torch.Tensor,
                      signal_g: torch.Tensor, time_ids: torch.Tensor) -> SDXLConditioning:
    """SDXL conditioning of templates ``index`` with the given signal-word embeddings.

    Args:
        text_encoder, text_encoder_2: the frozen SDXL text encoders.
        prompts: tokenised templates (on the encoders' device).
        index: one template (int; batch 1, no host-device transfer) or int64 (B,) per sample.
        signal_l: (B, 2, d1) signal rows for encoder 1; signal_g: (B, 2, d2) for encoder 2.
        time_ids: (B, 6) from :func:`add_time_ids`.
    """
    if isinstance(index, int):
        rows = slice(index, index + 1)
        pooled_length = prompts.eos_index[index] + 1
    else:
        rows = index
        pooled_length = max(prompts.eos_index[i] for i in index.tolist()) + 1
    positions = prompts.signal_positions[rows]
    hidden_1, _ = encode_with_signal_embeddings(text_encoder, prompts.input_ids[rows], positions, signal_l)
    hidden_2, pooled = encode_with_signal_embeddings(text_encoder_2, prompts.input_ids_2[rows], positions,
                                                     signal_g, prompts.eos_positions[rows], pooled_length)
    prompt_embeds = torch.cat([hidden_1, hidden_2.to(hidden_1.dtype)], dim=-1)
    return SDXLConditioning(prompt_embeds=prompt_embeds, text_embeds=pooled, time_ids=time_ids)


__all__ = ["PLACEHOLDER_ID", "SIGNAL_WORDS", "SDXLConditioning", "TEMPLATES", "TokenizedPrompts",
           "add_time_ids", "encode_with_signal_embeddings", "sdxl_conditioning", "tokenize_template",
           "tokenize_templates"]
