"""The real CLIP BPE tokenizer, built offline from the vocabulary that ships in a PyPI wheel.

OpenAI's ``bpe_simple_vocab_16e6.txt.gz`` (inside the ``clip-anytorch`` and ``open_clip_torch``
wheels) holds the 48,894 BPE merges. With the byte-to-unicode table it yields the 49,408-token
``vocab.json`` + ``merges.txt`` pair that :class:`transformers.CLIPTokenizer` loads, giving
exactly SDXL's token ids ("a photo of" -> 49406 320 1125 539 49407).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from functools import lru_cache
from pathlib import Path

from transformers import CLIPTokenizer

from core.files import cache_dir, write_bytes_atomic

BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
N_MERGES = 49152 - 256 - 2  # the merges OpenAI's CLIP uses: 48,894
MODEL_MAX_LENGTH = 77


class VocabularyNotFound(RuntimeError):
    """No installed package ships the CLIP BPE vocabulary."""


def bytes_to_unicode() -> dict[int, str]:
    """OpenAI's reversible byte -> printable unicode character table (256 entries)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def find_bpe_vocab() -> Path:
    """Locate ``bpe_simple_vocab_16e6.txt.gz`` inside an installed wheel (clip, open_clip)."""
    for package in ("clip", "open_clip"):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / BPE_FILE
            if candidate.is_file():
                return candidate
    raise VocabularyNotFound(
        f"{BPE_FILE} not found: install clip-anytorch (see requirements.txt)")


def write_vocab_files(bpe_gz: Path, out_dir: Path) -> tuple[Path, Path]:
    """Convert the gzipped BPE list into ``vocab.json`` and ``merges.txt`` in ``out_dir``."""
    lines = gzip.open(bpe_gz, "rt", encoding="utf-8").read().split("\n")
    merges = [tuple(line.split()) for line in lines[1:N_MERGES + 1]]
    byte_chars = list(bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab_path, merges_path = out_dir / "vocab.json", out_dir / "merges.txt"
    vocab_json = json.dumps({tok: i for i, tok in enumerate(vocab)}, ensure_ascii=False)
    merges_txt = "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n"
    write_bytes_atomic(vocab_path, vocab_json.encode("utf-8"))
    write_bytes_atomic(merges_path, merges_txt.encode("utf-8"))
    return vocab_path, merges_path


def vocab_cache_dir() -> Path:
    """Where the converted vocabulary is kept (``$COMIC_CACHE`` or ``~/.cache/comic_identity``)."""
    return cache_dir("clip_bpe")


@lru_cache(maxsize=1)
def vocab_files() -> tuple[str, str]:
    """Paths of ``vocab.json`` and ``merges.txt``, converted once into the cache (see module doc)."""
    out = vocab_cache_dir()
    vocab, merges = out / "vocab.json", out / "merges.txt"
    if not (vocab.is_file() and merges.is_file()):
        vocab, merges = write_vocab_files(find_bpe_vocab(), out)
    return str(vocab), str(merges)


def build_clip_tokenizer(pad_token: str = "<|endoftext|>") -> CLIPTokenizer:
    """A fresh CLIP BPE tokenizer (77 tokens). SDXL's tokenizer 2 pads with "!"."""
    vocab, merges = vocab_files()
    return CLIPTokenizer(vocab, merges, model_max_length=MODEL_MAX_LENGTH, pad_token=pad_token,
                         bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                         unk_token="<|endoftext|>")
