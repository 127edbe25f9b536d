"""A fingerprint of the two text encoders' token tables: which base an identity was learned on.

An identity is two token embeddings per text encoder, meaningful only in the token space it was
learned in. Fine-tuned SDXL checkpoints that froze the text encoders share SDXL's tables (an
identity carries over); ones that trained them do not (it should be retrained).

The fingerprint is a sketch, not a hash, so that the same weights loaded in float32, float16 or
bfloat16 compare equal: for each encoder, the rows of ``TOKENS`` (common caption words, the rows
a text-encoder fine-tune moves most) and the mean row of the original vocabulary
(``table[:49408]``: signal words added later are not part of it) are projected on ``DIRECTIONS``
seeded random unit directions (float32): ``(len(TOKENS) + 1) * DIRECTIONS`` floats per encoder,
stored with 4 significant digits (the whole text fits the 200-character metadata limit of
``configs/limits.yaml``). Two sketches match when their largest difference is within
``TOLERANCE`` of the sketch's largest value (bfloat16's rounding moves them by ~0.1%).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["DIRECTIONS", "TOKENS", "TOLERANCE", "EncoderFingerprint", "fingerprint_of", "same_encoders"]

VOCAB = 49408       # CLIP's vocabulary: rows past it are signal words added by the binder
#: CLIP BPE ids of "a", "the", "photo", "person" (both SDXL tokenizers share the vocabulary)
TOKENS = (320, 518, 1125, 2533)
DIRECTIONS = 2
TOLERANCE = 0.01
SEED = 20240522
VERSION = "v1"


@dataclass(frozen=True)
class EncoderFingerprint:
    """Sketches of ``text_encoder`` (``clip_l``) and ``text_encoder_2`` (``clip_g``), each
    ``(len(TOKENS) + 1) * DIRECTIONS`` floats."""

    clip_l: tuple[float, ...]
    clip_g: tuple[float, ...]

    def text(self) -> str:
        """``v1:<clip_l floats>;<clip_g floats>`` (4 significant digits), as stored in metadata."""
        def part(values: tuple[float, ...]) -> str:
            return ",".join(f"{v:.4g}" for v in values)
        return f"{VERSION}:{part(self.clip_l)};{part(self.clip_g)}"

    @classmethod
    def parse(cls, text: str) -> EncoderFingerprint | None:
        """The fingerprint stored as :meth:`text`; None for an empty or unreadable one."""
        version, _, body = (text or "").partition(":")
        parts = body.split(";")
        if version != VERSION or len(parts) != 2:
            return None
        try:
            clip_l, clip_g = (tuple(float(v) for v in p.split(",")) for p in parts)
        except ValueError:
            return None
        size = (len(TOKENS) + 1) * DIRECTIONS
        return cls(clip_l, clip_g) if len(clip_l) == size and len(clip_g) == size else None


def _sketch(table: torch.Tensor) -> tuple[float, ...]:
    """((len(TOKENS) + 1) * DIRECTIONS,) projections of the rows of :data:`TOKENS` and of the mean
    row of the original vocabulary of the (V, d) token ``table``."""
    generator = torch.Generator().manual_seed(SEED)
    directions = torch.randn(table.shape[1], DIRECTIONS, generator=generator)
    directions = directions / directions.norm(dim=0, keepdim=True)
    vocab = table.detach()[:VOCAB]
    rows = torch.cat([vocab[list(TOKENS)].to("cpu", torch.float32),
                      vocab.to(torch.float32).mean(dim=0, keepdim=True).cpu()])
    return tuple(float(v) for v in (rows @ directions).flatten())


def fingerprint_of(text_encoder: torch.nn.Module, text_encoder_2: torch.nn.Module) -> EncoderFingerprint:
    """The fingerprint of two loaded text encoders (``get_input_embeddings().weight``)."""
    return EncoderFingerprint(clip_l=_sketch(text_encoder.get_input_embeddings().weight),
                              clip_g=_sketch(text_encoder_2.get_input_embeddings().weight))


def _close(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    scale = max(max(abs(v) for v in a), 1e-12)
    return max(abs(x - y) for x, y in zip(a, b)) <= TOLERANCE * scale


def same_encoders(a: EncoderFingerprint, b: EncoderFingerprint) -> bool:
    """True when both encoders' token tables of ``a`` and ``b`` agree within :data:`TOLERANCE`."""
    return _close(a.clip_l, b.clip_l) and _close(a.clip_g, b.clip_g)
