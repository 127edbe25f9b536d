"""Phase 3: bind character names to learned identities through signal words.

Every full name of a panel's cast becomes that identity's two signal words: identity ``i`` of the
cast (0-based, in the panel's ``characters`` order) -> ``v{2i+1}* v{2i+2}*``, whose token
embeddings in BOTH SDXL text encoders are the identity's learned vectors (``clip_l`` (2, d1) for
encoder 1, ``clip_g`` (2, d2) for encoder 2). "Ada Lovelace walked." -> "v1* v2* walked.";
possessives keep their ending ("Ada Lovelace's" -> "v1* v2*'s").

Design (see docs/PANELS.md):

* **A fixed pool of signal tokens.** ``v1* .. v{2K}*`` with ``K = max_identities_per_panel`` are
  added once to the binder's OWN copies of both tokenizers (ids 49408 .. 49408 + 2K - 1 on CLIP);
  the shared tokenizers in :class:`~models.loading.Components` are never changed. A process that
  meets hundreds of identities never grows: the same 2K tokens are re-bound per request.
* **Rows as a per-thread overlay, not a resized table.** The pool rows live in a (2K, d) tensor
  per encoder that :meth:`SignalWordBinder.bound` activates for the calling thread only. A
  forward pre/post hook pair on each shared token-embedding module (installed once, module-level
  functions, inert unless the current thread has rows active) maps pool ids to those rows: the
  embedding output at a signal position IS the stored vector, exactly what a resized table would
  give, while the shared weights, table size and tokenizers stay bit-identical. Prompts without
  signal words, and every other thread, see the encoders exactly as before.
* **Isolation and the lock.** Two concurrent requests cannot see each other's rows: the overlay is
  thread-local. Encoding also runs under the Components' device gate (held from activating the
  rows through encoding; :mod:`core.concurrency`) because accelerate's offload hooks
  are not thread-safe; the returned embeddings are independent tensors. The gate is re-entrant:
  :meth:`PanelGenerator.draw <pipelines.generation.PanelGenerator.draw>` holds it around the
  whole panel.
"""

from __future__ import annotations

import copy
import hashlib
import re
import threading
import weakref
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Hashable, Iterator, Protocol, Sequence, runtime_checkable

import torch
from diffusers import StableDiffusionXLPipeline

SIGNAL_WORD = re.compile(r"v\d+\*", re.IGNORECASE)

_HOOKED: "weakref.WeakKeyDictionary[torch.nn.Module, bool]" = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()
# Per thread: id(embedding module) -> (first pool id, rows (2K, d)); and the pending pool mask
# between an embedding's pre- and post-hook.
_ACTIVE = threading.local()


class BindingError(ValueError):
    """A panel cannot be bound: too many identities, a duplicate, a reserved word, wrong shapes."""


@runtime_checkable
class IdentityLike(Protocol):
    """What binding needs from a :class:`identities.library.Identity`.

    Attributes:
        name: full name as written in the story ("Ada Lovelace").
        clip_l: float tensor (2, d1): the two signal-word rows for text encoder 1 (768 on SDXL).
        clip_g: float tensor (2, d2): the two rows for text encoder 2 (1280 on SDXL).
    """

    name: str
    clip_l: torch.Tensor
    clip_g: torch.Tensor


def signal_pair(index: int) -> tuple[str, str]:
    """The two signal words of cast member ``index`` (0-based): ``("v{2i+1}*", "v{2i+2}*")``."""
    if index < 0:
        raise ValueError(f"cast index must be >= 0, got {index}")
    return f"v{2 * index + 1}*", f"v{2 * index + 2}*"


def signal_words(max_identities: int) -> list[str]:
    """The whole pool: ``v1* .. v{2K}*``."""
    return [word for i in range(max_identities) for word in signal_pair(i)]


def _name_pattern(name: str) -> str:
    """Regex for a full name: words separated by any whitespace, straight or curly apostrophes."""
    words = name.split()
    if not words:
        raise BindingError("an identity has an empty name")
    escaped = ["".join("['\u2019]" if ch in "'\u2019" else re.escape(ch) for ch in word)
               for word in words]
    return r"\s+".join(escaped)


def bind_text(text: str, names: Sequence[str]) -> str:
    """Replace each full name in ``text`` by its cast member's signal words.

    Case-insensitive, whole words only (a name inside "O'Ada Lovelace" or "Ada Lovelace-Byron" is
    not replaced), possessive endings kept. ``names[i]`` -> :func:`signal_pair` ``(i)``; longer
    names win over names they contain.

    Raises:
        BindingError: ``text`` already holds a signal word (it would read another identity's
            rows), or two cast names are the same.
    """
    found = SIGNAL_WORD.search(text)
    if found:
        raise BindingError(f"the panel text contains the reserved word '{found.group(0)}'; "
                           "signal words are added automatically")
    lowered = [" ".join(n.split()).lower() for n in names]
    if len(set(lowered)) != len(lowered):
        raise BindingError(f"a character is listed twice in one panel: {list(names)}")
    if not names:
        return text
    order = sorted(range(len(names)), key=lambda i: len(lowered[i]), reverse=True)
    alternatives = "|".join(f"(?P<n{i}>{_name_pattern(names[i])})" for i in order)
    pattern = re.compile(rf"(?<![\w'\u2019-])(?:{alternatives})(?![\w-])", re.IGNORECASE)

    def replace(match: re.Match[str]) -> str:
        index = int(match.lastgroup[1:])  # type: ignore[index]
        return " ".join(signal_pair(index))

    return pattern.sub(replace, text)


def _active_rows() -> dict[int, tuple[int, torch.Tensor]]:
    rows = getattr(_ACTIVE, "rows", None)
    if rows is None:
        rows = _ACTIVE.rows = {}
        _ACTIVE.pending = {}
    return rows


def _signal_pre_hook(module: torch.nn.Module, args: tuple) -> tuple | None:
    """Before the table lookup: pool ids of the active overlay -> 0 (remember where they were)."""
    entry = _active_rows().get(id(module))
    if entry is None or not args:
        return None
    start, rows = entry
    ids = args[0]
    mask = (ids >= start) & (ids < start + rows.shape[0])
    if not bool(mask.any()):
        _ACTIVE.pending.pop(id(module), None)
        return None
    _ACTIVE.pending[id(module)] = (mask, (ids - start).clamp(0, rows.shape[0] - 1))
    return (ids.masked_fill(mask, 0), *args[1:])


def _signal_post_hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
    """After the lookup: the remembered pool positions take the overlay rows."""
    pending = getattr(_ACTIVE, "pending", {}).pop(id(module), None)
    if pending is None:
        return None
    mask, index = pending
    rows = _active_rows()[id(module)][1].to(device=output.device, dtype=output.dtype)
    return torch.where(mask.unsqueeze(-1), rows[index], output)


def install_signal_hooks(embedding: torch.nn.Module) -> None:
    """Attach the (inert unless activated) overlay hooks to a token-embedding module, once."""
    if _HOOKED.get(embedding):  # the common case, without taking the guard
        return
    with _GUARD:
        if _HOOKED.get(embedding):
            return
        embedding.register_forward_pre_hook(_signal_pre_hook)
        embedding.register_forward_hook(_signal_post_hook)
        _HOOKED[embedding] = True


@contextmanager
def signal_rows(embedding: torch.nn.Module, first_id: int, rows: torch.Tensor) -> Iterator[None]:
    """Within the block, in this thread only, ids ``first_id + j`` of ``embedding`` read ``rows[j]``."""
    install_signal_hooks(embedding)
    active = _active_rows()
    previous = active.get(id(embedding))
    active[id(embedding)] = (first_id, rows)
    try:
        yield
    finally:
        if previous is None:
            active.pop(id(embedding), None)
        else:
            active[id(embedding)] = previous
        _ACTIVE.pending.pop(id(embedding), None)


@dataclass(frozen=True)
class PromptEmbeddings:
    """SDXL conditioning for one prompt, ready for ``StableDiffusionXLPipeline(**as_kwargs())``.

    Attributes:
        prompt_embeds: (B, 77, d1 + d2) penultimate hidden states of both encoders, concatenated.
        pooled_prompt_embeds: (B, p) encoder 2's pooled projection (SDXL's ``text_embeds``).
        negative_prompt_embeds: same shape as ``prompt_embeds``, or None without guidance.
        negative_pooled_prompt_embeds: same shape as ``pooled_prompt_embeds``, or None.
    """

    prompt_embeds: torch.Tensor
    pooled_prompt_embeds: torch.Tensor
    negative_prompt_embeds: torch.Tensor | None = None
    negative_pooled_prompt_embeds: torch.Tensor | None = None

    def as_kwargs(self) -> dict[str, torch.Tensor | None]:
        return dict(prompt_embeds=self.prompt_embeds, pooled_prompt_embeds=self.pooled_prompt_embeds,
                    negative_prompt_embeds=self.negative_prompt_embeds,
                    negative_pooled_prompt_embeds=self.negative_pooled_prompt_embeds)


def tensor_digest(tensor: torch.Tensor) -> str:
    """blake2b of a tensor's dtype, shape and bytes (a cache key for identity vectors)."""
    data = tensor.detach().to("cpu").contiguous()
    digest = hashlib.blake2b(f"{data.dtype}{tuple(data.shape)}".encode(), digest_size=16)
    digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cast_key(cast: Sequence[IdentityLike]) -> tuple[tuple[str, str], ...]:
    """What an encoded prompt depends on in ``cast``: each member's vectors, in binding order.

    Names are left out on purpose: the bound prompt already holds signal words, not names.
    """
    return tuple((tensor_digest(i.clip_l), tensor_digest(i.clip_g)) for i in cast)


class PromptCache:
    """A small, thread-safe LRU of encoded prompts (:class:`PromptEmbeddings`).

    Keys are whatever the caller builds (the generator uses the bound prompt and
    :func:`cast_key`, or the negative prompt). Values are shared, never modified: the
    pipeline only reads its ``prompt_embeds``. ``maxsize`` 0 disables caching (every call encodes).
    On SDXL in bfloat16 one entry is ~0.3 MB of device memory.

    Attributes:
        hits, misses: counters (for tests and benchmarks).
    """

    def __init__(self, maxsize: int = 32) -> None:
        if maxsize < 0:
            raise ValueError(f"maxsize must be >= 0, got {maxsize}")
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, PromptEmbeddings] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, compute: Callable[[], "PromptEmbeddings"]) -> "PromptEmbeddings":
        """The cached value of ``key``, or ``compute()`` (run outside the cache's lock) stored."""
        if self.maxsize:
            with self._lock:
                value = self._entries.get(key)
                if value is not None:
                    self._entries.move_to_end(key)
                    self.hits += 1
                    return value
                self.misses += 1
        else:
            self.misses += 1
        value = compute()
        if self.maxsize:
            with self._lock:
                self._entries[key] = value
                self._entries.move_to_end(key)
                while len(self._entries) > self.maxsize:
                    self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class SignalWordBinder:
    """Signal-word binding on a :class:`~models.loading.Components`' text encoders.

    Construction is cheap (two tokenizer copies) and changes nothing shared; any number of binders
    may exist. Holds no reference to the Components object itself.

    Attributes:
        tokenizer, tokenizer_2: the binder's own tokenizer copies holding the pool.
        text_encoder, text_encoder_2: the shared encoders (never modified).
        max_identities: K, the most identities one panel may hold.
        words: the pool ``("v1*", ..., "v{2K}*")``.
        token_ids, token_ids_2: ids of ``words`` in tokenizer 1 / 2 (consecutive).
        lock: the Components' device gate lock (``components.gate.lock``), re-entrant.
    """

    def __init__(self, components, max_identities: int | None = None) -> None:
        self.max_identities = int(max_identities if max_identities is not None
                                  else components.config.generation.max_identities_per_panel)
        if self.max_identities < 1:
            raise ValueError("max_identities must be at least 1")
        self.device = components.device
        self.text_encoder = components.text_encoder
        self.text_encoder_2 = components.text_encoder_2
        self.lock = components.gate.lock
        self.words = tuple(signal_words(self.max_identities))
        self.tokenizer = copy.deepcopy(components.tokenizer)
        self.tokenizer_2 = copy.deepcopy(components.tokenizer_2)
        for tokenizer in (self.tokenizer, self.tokenizer_2):
            if any(w in tokenizer.get_vocab() for w in self.words):
                raise BindingError("the shared tokenizer already defines signal words; "
                                   "signal words must only be added by the binder")
            tokenizer.add_tokens(list(self.words))
        self.token_ids = tuple(self.tokenizer.convert_tokens_to_ids(list(self.words)))
        self.token_ids_2 = tuple(self.tokenizer_2.convert_tokens_to_ids(list(self.words)))
        for ids in (self.token_ids, self.token_ids_2):
            if list(ids) != list(range(ids[0], ids[0] + len(ids))):  # pragma: no cover
                raise BindingError(f"signal word ids are not consecutive: {ids}")
        # An encode-only SDXL pipeline on the binder's tokenizers: diffusers' own encode_prompt
        # (penultimate states, pooled projection, zeroed empty negatives), no copy of it here.
        self._encoder = StableDiffusionXLPipeline(
            vae=None, text_encoder=self.text_encoder, text_encoder_2=self.text_encoder_2,
            tokenizer=self.tokenizer, tokenizer_2=self.tokenizer_2, unet=None, scheduler=None,
            add_watermarker=False)

    # ------------------------------------------------------------------ text

    def bind(self, text: str, cast: Sequence[IdentityLike | str]) -> str:
        """``text`` with each cast member's full name replaced by its signal words.

        ``cast`` holds identities (or plain names) in panel order; at most ``max_identities``.
        """
        self._check_count(len(cast))
        return bind_text(text, [c if isinstance(c, str) else c.name for c in cast])

    def _check_count(self, n: int) -> None:
        if n > self.max_identities:
            raise BindingError(f"a panel holds {n} identities; at most {self.max_identities} fit "
                               "in one panel (generation.max_identities_per_panel)")

    def check_identity(self, identity: IdentityLike) -> None:
        """BindingError unless the identity's vectors fit these encoders: (2, d1) and (2, d2)."""
        for label, vectors, encoder in (("clip_l", identity.clip_l, self.text_encoder),
                                        ("clip_g", identity.clip_g, self.text_encoder_2)):
            width = encoder.get_input_embeddings().embedding_dim
            shape = tuple(getattr(vectors, "shape", ()))
            if shape != (2, width):
                raise BindingError(
                    f"identity '{identity.name}' has {label} of shape {shape}, but this model needs "
                    f"(2, {width}); it was learned for another base model")
            if not torch.isfinite(vectors).all():
                raise BindingError(f"identity '{identity.name}' has non-finite {label} values")

    def signal_positions(self, bound_prompt: str, count: int) -> list[tuple[int, ...]]:
        """Where each cast member's signal words sit in the encoded prompt.

        Returns, for cast member ``i`` < ``count``, the token positions (0 .. 76 on CLIP, in the
        ``prompt_embeds`` sequence) holding ``v{2i+1}*`` or ``v{2i+2}*``, as both tokenizers
        split ``bound_prompt`` the way ``encode_prompt`` does (padded and truncated to 77 tokens;
        a signal word cut off by truncation has no position). The two tokenizers place words
        alike; the union is taken in case they ever differ.
        """
        self._check_count(count)
        found: list[set[int]] = [set() for _ in range(count)]
        for tokenizer, pool in ((self.tokenizer, self.token_ids), (self.tokenizer_2, self.token_ids_2)):
            ids = tokenizer(bound_prompt, padding="max_length", max_length=tokenizer.model_max_length,
                            truncation=True).input_ids
            for i in range(count):
                wanted = set(pool[2 * i: 2 * i + 2])
                found[i].update(p for p, token in enumerate(ids) if token in wanted)
        return [tuple(sorted(positions)) for positions in found]

    # ------------------------------------------------------------------ rows

    def rows(self, cast: Sequence[IdentityLike]) -> tuple[torch.Tensor, torch.Tensor]:
        """The pool rows for ``cast``: (2K, d1) and (2K, d2), in each encoder's dtype and device.

        Row ``2i + j`` = ``cast[i].clip_l[j]`` (encoder 1) / ``cast[i].clip_g[j]`` (encoder 2);
        rows of unused pool slots are zero. Exact in float32 (a cast in fp16/bf16).
        """
        self._check_count(len(cast))
        for identity in cast:
            self.check_identity(identity)
        out = []
        for encoder, attr in ((self.text_encoder, "clip_l"), (self.text_encoder_2, "clip_g")):
            weight = encoder.get_input_embeddings().weight
            rows = torch.zeros(len(self.words), weight.shape[1], dtype=weight.dtype,
                               device=weight.device)
            for i, identity in enumerate(cast):
                rows[2 * i: 2 * i + 2] = getattr(identity, attr).detach().to(rows.device, rows.dtype)
            out.append(rows)
        return out[0], out[1]

    @contextmanager
    def bound(self, cast: Sequence[IdentityLike]) -> Iterator["SignalWordBinder"]:
        """Hold the lock with the cast's rows active for this thread; encode inside the block.

        An empty cast activates no rows at all (prompts without signal words need none).
        """
        if not cast:
            with self.lock:
                yield self
            return
        rows, rows_2 = self.rows(cast)
        with self.lock, \
                signal_rows(self.text_encoder.get_input_embeddings(), self.token_ids[0], rows), \
                signal_rows(self.text_encoder_2.get_input_embeddings(), self.token_ids_2[0], rows_2):
            yield self

    # ------------------------------------------------------------------ encoding

    def encode(self, prompt: str | list[str], cast: Sequence[IdentityLike] = (),
               negative_prompt: str | list[str] | None = None, *,
               do_classifier_free_guidance: bool = True,
               device: torch.device | None = None) -> PromptEmbeddings:
        """Encode an already-bound prompt with ``cast``'s rows in place, under the lock.

        ``prompt`` may only use the signal words of ``len(cast)`` identities. ``negative_prompt``
        None or "" gives SDXL's zero negative conditioning (as the vanilla pipeline does for
        None). Returns independent tensors (see :class:`PromptEmbeddings`).
        """
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        allowed = set(self.words[: 2 * len(cast)])
        for text in prompts:
            for word in SIGNAL_WORD.findall(text):
                if word.lower() not in allowed:
                    raise BindingError(f"prompt uses '{word}' but the panel binds only "
                                       f"{len(cast)} identit{'y' if len(cast) == 1 else 'ies'}")
        negatives = [negative_prompt] if isinstance(negative_prompt, str) else list(negative_prompt or [])
        found = next((m.group(0) for n in negatives for m in [SIGNAL_WORD.search(n)] if m), None)
        if found:
            raise BindingError(f"the negative prompt contains the reserved word '{found}'")
        if isinstance(negative_prompt, str) and not negative_prompt.strip():
            negative_prompt = None
        with self.bound(cast), torch.no_grad():
            embeds, negative, pooled, negative_pooled = self._encoder.encode_prompt(
                prompt=prompts, device=device or self.device, num_images_per_prompt=1,
                do_classifier_free_guidance=do_classifier_free_guidance,
                negative_prompt=negative_prompt)
        return PromptEmbeddings(embeds, pooled, negative, negative_pooled)

    def encode_panel(self, text: str, cast: Sequence[IdentityLike], **kwargs) -> PromptEmbeddings:
        """:meth:`bind` then :meth:`encode` (``kwargs`` as for :meth:`encode`)."""
        return self.encode(self.bind(text, cast), cast, **kwargs)


__all__ = ["BindingError", "IdentityLike", "PromptCache", "PromptEmbeddings", "SIGNAL_WORD",
           "SignalWordBinder", "bind_text", "cast_key", "install_signal_hooks",
           "signal_pair", "signal_rows", "signal_words", "tensor_digest"]
