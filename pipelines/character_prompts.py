"""One prompt per character: a panel sentence cut into character phrases and a background.

For a panel with several characters, regional attention (:mod:`pipelines.regional`) composites a
separately encoded prompt per character, so no identity's tokens are ever seen by another's
(CLIP's text encoders are causal: in one shared prompt every token after a character's signal
words depends on them). :func:`character_prompts` cuts the prompts from the panel sentence:

* **a character's phrase**: each place its full name occurs, with the words that describe it
  right after the name: a possessive (``Ada Lovelace's red hat``), a parenthesis
  (``Ada Lovelace (in a red dress)``), an appositive between commas (``Ada Lovelace, a tall
  woman in green,``) or a run that starts with a describing word (:data:`DESCRIBING_WORDS`:
  ``in``, ``wearing``, ``with``, ``who`` ...). A run ends at punctuation, at a joining word
  (:data:`JOINING_WORDS`: ``and``, ``while`` ...) or where another character is named; a run of
  the describing word alone is dropped ("Ada Lovelace with Alan Turing" describes nobody), and
  a parenthesis or appositive that names another character is dropped whole. Several occurrences are
  joined with ", ". An optional description (``descriptions[name]``, e.g. an identity's
  appearance text) is appended. The phrase is bound to the signal words ``v1* v2*``;
  :func:`encode_character_prompts` re-binds it to the character's own pair and encodes it as
  its own sequence of one batched call (no other prompt's tokens in it).
* **the background**: the sentence with every character's name replaced by ``a person`` (the
  describing words stay, so no verb is lost), so it still reads ("a person and a person play
  chess") and holds no signal words.

No part-of-speech tagging: a run after a describing word continues until punctuation or a
joining word, so "Ada Lovelace in red plays chess" gives the phrase "Ada Lovelace in red plays
chess" (the verb rides along; the other character is never included).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from pipelines.binding import (
    SIGNAL_WORD,
    IdentityLike,
    PromptCache,
    PromptEmbeddings,
    SignalWordBinder,
    bind_text,
    cast_key,
    signal_pair,
)

#: Words that start a description when they directly follow a character's name.
DESCRIBING_WORDS = frozenset({
    "in", "wearing", "with", "who", "whose", "dressed", "holding", "carrying", "sporting", "clad",
    "donning", "having", "bearing", "under", "without"})
#: Words that end a description (they join the character to the rest of the sentence).
JOINING_WORDS = frozenset({"and", "or", "but", "while", "as", "then", "whilst", "so", "because"})
#: Replaces each character's name in the background prompt.
PLACEHOLDER = "a person"
_CLAUSE_END = re.compile(r"[,;:.!?()\[\]\"]")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class CharacterPrompts:
    """The per-character prompts of one panel sentence (not yet styled).

    Attributes:
        background: the sentence with each character's name replaced by :data:`PLACEHOLDER`
            (no signal words).
        characters: per cast member (in the cast's order), its phrase bound to ``v1* v2*``;
            ``""`` for a character the sentence does not name.
    """

    background: str
    characters: tuple[str, ...]


def _describing_end(text: str, start: int, others: re.Pattern[str]) -> int:
    """Where the description that begins at ``text[start:]`` (right after a name) ends; ``start``
    itself when nothing describes the character there."""
    rest = text[start:]
    if rest.startswith(("'s", "\u2019s")):  # possessive: up to the clause's end
        return _run_end(text, start, start + 2, others, min_words=1)
    stripped = rest.lstrip()
    offset = start + len(rest) - len(stripped)
    if stripped.startswith("("):
        close = text.find(")", offset)
        if close > 0 and not others.search(text, offset, close):
            return close + 1
        return start
    if stripped.startswith(","):  # an appositive: ", a tall woman in green,"
        word = _WORD.match(text[offset + 1:].lstrip())
        if word is None or word.group(0).lower() not in DESCRIBING_WORDS | {"a", "an", "the"}:
            return start
        close = _CLAUSE_END.search(text, offset + 1)
        stop = close.start() if close else len(text)
        if others.search(text, offset, stop):
            return start
        return stop + 1 if close is not None and close.group(0) == "," else stop
    word = _WORD.match(stripped)
    if word is None or word.group(0).lower().strip(",.;:!?") not in DESCRIBING_WORDS:
        return start
    return _run_end(text, start, offset, others, min_words=2)


def _run_end(text: str, name_end: int, start: int, others: re.Pattern[str], min_words: int) -> int:
    """The end of a description run from ``start``: the first punctuation mark, joining word or
    other character's signal words, with trailing spaces left out; ``name_end`` (no description)
    when the run has fewer than ``min_words`` words."""
    end = len(text)
    punctuation = _CLAUSE_END.search(text, start)
    if punctuation:
        end = punctuation.start()
    other = others.search(text, start, end)
    if other:
        end = other.start()
    for word in _WORD.finditer(text, start, end):
        if word.group(0).lower() in JOINING_WORDS:
            end = word.start()
            break
    run = text[start:end]
    if len(run.split()) < min_words:
        return name_end
    return start + len(run.rstrip())


def character_prompts(text: str, names: Sequence[str],
                      descriptions: Mapping[str, str] | None = None) -> CharacterPrompts:
    """Cut ``text`` into one phrase per character of ``names`` and a background (see module).

    Args:
        text: the panel sentence with full names (pronouns already resolved).
        names: the panel's cast, in binding order.
        descriptions: optional name -> appearance text, appended to that character's phrase
            (looked up by the exact name, then case-insensitively; blank ones ignored).
    Raises:
        BindingError: as :func:`pipelines.binding.bind_text` (reserved words, duplicate names).
    """
    bound = bind_text(text, list(names))
    pairs = [re.compile(re.escape(" ".join(signal_pair(i))), re.IGNORECASE) for i in range(len(names))]
    spans: list[tuple[int, int, int]] = []  # (start, end, character)
    for i, pattern in enumerate(pairs):
        others = re.compile("|".join(p.pattern for k, p in enumerate(pairs) if k != i) or r"(?!)",
                            re.IGNORECASE)
        for match in pattern.finditer(bound):
            spans.append((match.start(), max(match.end(), _describing_end(bound, match.end(), others)), i))
    spans.sort()
    lowered = {k.lower(): v for k, v in (descriptions or {}).items()}
    phrases: list[list[str]] = [[] for _ in names]
    own = " ".join(signal_pair(0))
    for start, end, i in spans:
        phrase = " ".join(bound[start:end].split()).rstrip(",")
        phrase = phrase.replace(" ".join(signal_pair(i)), own) if i else phrase
        if phrase not in phrases[i]:
            phrases[i].append(phrase)
    background = bound
    for pattern in pairs:
        background = pattern.sub(PLACEHOLDER, background)
    out = []
    for i, name in enumerate(names):
        parts = list(phrases[i])
        extra = (descriptions or {}).get(name, lowered.get(name.lower(), "")) if parts else ""
        if extra and extra.strip():
            parts.append(" ".join(bind_text(extra, []).split()))  # BindingError on a signal word
        out.append(", ".join(parts))
    return CharacterPrompts(background=" ".join(background.split()), characters=tuple(out))




def encode_character_prompts(binder: SignalWordBinder, cache: PromptCache, background: str,
                             phrases: Sequence[str], cast: Sequence[IdentityLike],
                             device: torch.device | None = None, styled: object = ()) -> PromptEmbeddings:
    """The conditioning of a panel drawn with per-character prompts (no negative).

    All prompts go through each text encoder in ONE batched call (through ``cache``, keyed by the
    whole batch: background, phrases, every cast member's vectors and ``styled``): batch row 0 is
    the background (no signal words), row ``1 + i`` is phrase ``i`` re-bound from ``v1* v2*`` to
    character ``i``'s own pair (:func:`~pipelines.binding.signal_pair`), with the whole cast's rows
    active. Each sequence holds only its own character's signal words, and batch rows never mix
    (CLIP's attention is within a sequence; every other layer is per token), so no prompt sees
    another identity's rows: the leak test checks this bit for bit. Returns ``prompt_embeds``
    (1, (1 + characters) * 77, d1 + d2) = ``[background | character 1 | ...]`` along the
    sequence, and the background's pooled embedding (1, p): no identity reaches SDXL's
    ``text_embeds``. ``styled``: the style LoRAs loaded now (:func:`pipelines.loras.lora_key`:
    they may change the encoders).
    """
    if len(phrases) != len(cast):
        raise ValueError(f"{len(phrases)} character prompts for a cast of {len(cast)}")
    own = signal_pair(0)
    prompts = [background] + [_rebind(text, own, signal_pair(i)) for i, text in enumerate(phrases)]

    def encode() -> PromptEmbeddings:
        batch = binder.encode(prompts, tuple(cast), do_classifier_free_guidance=False, device=device)
        embeds = batch.prompt_embeds
        return PromptEmbeddings(embeds.reshape(1, -1, embeds.shape[-1]),
                                batch.pooled_prompt_embeds[:1].clone())

    return cache.get(("character prompts", tuple(prompts), cast_key(cast), styled), encode)


def _rebind(text: str, source: tuple[str, str], target: tuple[str, str]) -> str:
    """``text`` with the signal words ``source`` replaced by ``target`` (case-insensitive)."""
    mapping = {word.lower(): new for word, new in zip(source, target)}
    return SIGNAL_WORD.sub(lambda m: mapping.get(m.group(0).lower(), m.group(0)), text)


__all__ = ["DESCRIBING_WORDS", "JOINING_WORDS", "PLACEHOLDER", "CharacterPrompts", "character_prompts",
           "encode_character_prompts"]
