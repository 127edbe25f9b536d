"""Editability prior: celebrity-name embedding statistics and the AdaIN that applies them.

For one text encoder, the raw token-embedding rows (no position embeddings) of the first-name and
last-name tokens of a celebrity list (``train.celebrity_names``; by default
:data:`~stableidentity.celebrities.OFFICIAL_CELEBRITIES`) are stacked to (N, 2, d); their
mean and standard deviation over names give ``mu`` and ``sigma`` of shape (2, d). A learned
identity word pair is then ``v = mu + sigma * MLP(f)``: the MLP's final LayerNorm is the
normalisation half of AdaIN, this module the affine half, so the learned words land in the value
range of real names (about +-0.055 for SDXL, versus +-0.8 for textual inversion).

The statistics are cached on disk as safetensors under ``$COMIC_CACHE/celeb_stats`` (default
``~/.cache/comic_identity/celeb_stats``), keyed by the model id and a SHA-256 of exactly the
embedding rows they are computed from (plus the table shape and dtype and the name list). Hashing
those rows instead of the whole table (49,408 x 1280 for bigG) keeps the key exact for what the
statistics depend on while costing microseconds.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from safetensors.torch import load_file, save
from transformers import PreTrainedTokenizerBase

from core.files import cache_dir, write_bytes_atomic
from stableidentity.celebrities import OFFICIAL_CELEBRITIES


class CelebrityNameError(ValueError):
    """A celebrity name is not two words that are each a single token."""


@dataclass(frozen=True)
class CelebStats:
    """Per-position statistics of celebrity-name token embeddings of one text encoder.

    Attributes:
        mean: float32 (2, d): mean of first-name (row 0) and last-name (row 1) embeddings.
        std: float32 (2, d): their standard deviation over names (unbiased).
        num_names: N, the number of names used.
    """

    mean: torch.Tensor
    std: torch.Tensor
    num_names: int

    def to(self, device: torch.device | str) -> "CelebStats":
        return CelebStats(self.mean.to(device), self.std.to(device), self.num_names)


def celeb_token_ids(tokenizer: PreTrainedTokenizerBase, names: Sequence[str] = OFFICIAL_CELEBRITIES) -> torch.Tensor:
    """(N, 2) int64 token ids of first and last names; CelebrityNameError if one is not 2 tokens."""
    ids = []
    for name in names:
        words = name.split()
        if len(words) != 2:
            raise CelebrityNameError(f"celebrity name {name!r} is not two words")
        pair = []
        for word in words:
            tokens = tokenizer(word, add_special_tokens=False).input_ids
            if len(tokens) != 1:
                raise CelebrityNameError(f"{word!r} in {name!r} is {len(tokens)} CLIP tokens, not one")
            pair.append(tokens[0])
        ids.append(pair)
    return torch.tensor(ids, dtype=torch.int64)


def compute_celeb_stats(embedding_rows: torch.Tensor) -> CelebStats:
    """Statistics from stacked rows (N, 2, d) -> mean, std (2, d) float32."""
    rows = embedding_rows.detach().to(torch.float32)
    if rows.ndim != 3 or rows.shape[1] != 2 or rows.shape[0] < 2:
        raise ValueError(f"expected embedding rows (N >= 2, 2, d), got {tuple(rows.shape)}")
    return CelebStats(mean=rows.mean(dim=0), std=rows.std(dim=0), num_names=rows.shape[0])


def stats_cache_dir() -> Path:
    """``$COMIC_CACHE/celeb_stats`` or ``~/.cache/comic_identity/celeb_stats``."""
    return cache_dir("celeb_stats")


def stats_cache_key(model_id: str, table: torch.Tensor, rows: torch.Tensor, names: Sequence[str]) -> str:
    """``<model id, sanitised>-<sha256[:16]>`` over table shape/dtype, the used rows and the names."""
    digest = hashlib.sha256()
    digest.update(f"{tuple(table.shape)}|{table.dtype}|".encode())
    digest.update("\n".join(names).encode())
    digest.update(rows.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy().tobytes())
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("_")[-80:] or "model"
    return f"{slug}-{digest.hexdigest()[:16]}"


def celeb_stats(text_encoder: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, model_id: str, *,
                names: Sequence[str] = OFFICIAL_CELEBRITIES, cache_dir: Path | None = None,
                use_cache: bool = True) -> CelebStats:
    """Celebrity statistics of one text encoder, from the disk cache when present.

    Args:
        text_encoder: a CLIP text model (``get_input_embeddings()`` gives the token table).
        tokenizer: its tokenizer (the names are tokenised with it).
        model_id: names the cache entry (e.g. ``f"{config.model.pretrained}/text_encoder_2"``).
        names: "First Last" names, each word a single token.
        cache_dir: defaults to :func:`stats_cache_dir`.
        use_cache: read/write the cache (a failed write is ignored).
    Returns:
        :class:`CelebStats` on the encoder's device, float32.
    """
    table = text_encoder.get_input_embeddings().weight
    ids = celeb_token_ids(tokenizer, names).to(table.device)
    rows = table.detach()[ids]  # (N, 2, d)
    if not use_cache:
        return compute_celeb_stats(rows)
    folder = cache_dir or stats_cache_dir()
    path = folder / f"{stats_cache_key(model_id, table, rows, names)}.safetensors"
    if path.is_file():
        try:
            saved = load_file(str(path))
            return CelebStats(mean=saved["mean"].to(table.device), std=saved["std"].to(table.device),
                              num_names=int(saved["num_names"].item()))
        except (OSError, KeyError, RuntimeError, ValueError):
            pass  # unreadable entry: recompute and overwrite
    stats = compute_celeb_stats(rows)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, save({"mean": stats.mean.cpu().contiguous(),
                                       "std": stats.std.cpu().contiguous(),
                                       "num_names": torch.tensor([stats.num_names])},
                                      metadata={"model_id": model_id}))
    except OSError:
        pass  # read-only cache: the statistics are cheap to recompute
    return stats


def adain(normalized: torch.Tensor, stats: CelebStats) -> torch.Tensor:
    """Affine half of AdaIN: ``mu + sigma * normalized``.

    Args:
        normalized: (..., 2, d) MLP output (zero mean, unit variance per identity).
        stats: the encoder's celebrity statistics.
    Returns:
        (..., 2, d) embeddings in the celebrity-name range, dtype of ``normalized``.
    """
    mean = stats.mean.to(device=normalized.device, dtype=normalized.dtype)
    std = stats.std.to(device=normalized.device, dtype=normalized.dtype)
    return mean + std * normalized


__all__ = ["CelebStats", "CelebrityNameError", "adain", "celeb_stats", "celeb_token_ids",
           "compute_celeb_stats", "stats_cache_dir", "stats_cache_key"]
