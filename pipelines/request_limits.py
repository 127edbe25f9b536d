"""The limits table (``configs/limits.yaml``) applied to a comic request, without torch.

One function per thing checked; every refusal is a :class:`LimitError` whose one-line message
names the value and the limit's key ("steps 1000000000000 is over the limit of 500
(limits.yaml: steps)"). The same checks run when a project or panel list is loaded
(:mod:`pipelines.project`), when the app builds a request from its table and settings, when the
command line parses its options (before any model loads) and in
:meth:`pipelines.generation.PanelGenerator.check_request` just before drawing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

from configs import Limits
from identities.names import name_key, show
from pipelines.errors import GenerationError

if TYPE_CHECKING:  # pragma: no cover
    from pipelines.project import ComicRequest, PanelSpec


class LimitError(GenerationError):
    """A value outside the limits table (one line naming the limit)."""


def check_text(text: str, what: str, key: str, limits: Limits) -> None:
    """``text`` at most ``limits.<key>`` characters."""
    if len(text) > getattr(limits, key):
        raise LimitError(limits.refusal(f"{what} ({len(text):,} characters)", key))


def check_panel_count(count: int, limits: Limits) -> None:
    """At most ``limits.panels`` panels."""
    if count > limits.panels:
        raise LimitError(limits.refusal(f"the comic has {count:,} panels, which", "panels"))


def check_panel(panel: PanelSpec, number: int, limits: Limits) -> None:
    """Panel ``number`` (1-based): sentence length, character count and name lengths."""
    where = f"panel {number}"
    check_text(panel.text, f"{where}: the text", "panel_text_chars", limits)
    if len(panel.characters) > limits.cast:
        raise LimitError(limits.refusal(f"{where}: {len(panel.characters)} characters", "cast"))
    for name in panel.characters:
        check_text(name, f"{where}: the name {show(name)}", "name_chars", limits)
    if len(panel.speakers) > limits.cast:
        raise LimitError(limits.refusal(f"{where}: {len(panel.speakers)} speakers", "cast"))
    for name in panel.speakers:
        check_text(name, f"{where}: the speaker {show(name)}", "name_chars", limits)


def whole(value: Any, label: str, low: int, high: int, key: str, limits: Limits,
          unit: str = "") -> int:
    """``value`` as an int in [low, high]; LimitError naming ``key`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise LimitError(f"{label} must be a whole number, got {show(str(value))}")
    if value < low:
        raise LimitError(f"{label} must be at least {low}{unit}, got {value}")
    if value > high:
        raise LimitError(limits.refusal(f"{label} {value}", key, high))
    return value


def check_size(label: str, value: Any, limits: Limits, preset: str | None) -> int:
    """A panel width or height: a positive multiple of ``size_multiple``, at most the preset's side."""
    step = limits.size_multiple
    if isinstance(value, bool) or not isinstance(value, int) or value < step or value % step:
        raise LimitError(f"{label} must be a positive multiple of {step} pixels, got "
                         f"{show(str(value))} {limits.tag('size_multiple')}")
    side = limits.side_limit(preset)
    key = f"max_side.{preset}" if preset in limits.max_side else "max_side.default"
    if value > side:
        named = f" for the '{preset}' preset" if preset else ""
        raise LimitError(limits.refusal(f"{label} {value}{named}", key, side))
    return value


def check_guidance(value: Any, limits: Limits) -> float:
    """A finite guidance scale in [0, ``limits.guidance``]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LimitError(f"guidance must be a number, got {show(str(value))}")
    if isinstance(value, float) and not math.isfinite(value):
        raise LimitError(f"guidance must be a finite number, got {value}")
    if value < 0:
        raise LimitError(f"guidance must not be negative, got {value}")
    if value > limits.guidance:
        raise LimitError(limits.refusal(f"guidance {value}", "guidance"))
    return float(value)


def check_seed(value: Any, label: str, limits: Limits) -> int:
    """A seed in [0, ``limits.seed``]."""
    return whole(value, label, 0, limits.seed, "seed", limits)


def check_words(keywords: Sequence[str], style: str, negative: str | None, limits: Limits) -> None:
    """Style name, keyword count and lengths, negative prompt length."""
    check_text(style, "the style name", "metadata_chars", limits)
    if len(keywords) > limits.keywords:
        raise LimitError(limits.refusal(f"{len(keywords)} style keywords", "keywords"))
    for word in keywords:
        check_text(word, f"the style keyword {show(word)}", "metadata_chars", limits)
    if negative is not None:
        check_text(negative, "the negative prompt", "prompt_chars", limits)


def check_request(request: ComicRequest, limits: Limits, preset: str | None = None) -> ComicRequest:
    """Every limit on ``request``; settings left None (preset defaults) are not checked.

    Args:
        preset: the preset the request will be drawn with (its ``max_side``); None: the default.
    Returns the request unchanged.
    Raises:
        LimitError: the first value outside the table.
    """
    check_panel_count(len(request.panels), limits)
    for number, panel in enumerate(request.panels, start=1):
        check_panel(panel, number, limits)
    cast = {name_key(n) for p in request.panels for n in p.characters}
    if len(cast) > limits.cast:
        raise LimitError(limits.refusal(f"the comic has {len(cast)} characters, which", "cast"))
    check_words(request.keywords, request.style, request.negative_prompt, limits)
    if request.steps is not None:
        whole(request.steps, "steps", 1, limits.steps, "steps", limits)
    for label, value in (("width", request.width), ("height", request.height)):
        if value is not None:
            check_size(label, value, limits, preset)
    if request.guidance_scale is not None:
        check_guidance(request.guidance_scale, limits)
    if request.candidates is not None:
        whole(request.candidates, "candidates", 1, limits.candidates, "candidates", limits)
    check_seed(request.seed, "the seed", limits)
    for i in range(len(request.panels)):
        check_seed(request.panel_seed(i), f"panel {i + 1}: seed", limits)
    return request


__all__ = ["LimitError", "check_guidance", "check_panel", "check_panel_count", "check_request",
           "check_seed", "check_size", "check_text", "check_words", "whole"]
