"""Style LoRAs: SDXL LoRA ``.safetensors`` files in ``loras_dir`` (``--loras DIR``), per comic.

A comic names LoRAs with a weight each (:class:`LoraChoice`, in ``ComicRequest.loras`` and
``project.json``). :func:`loras_applied` loads them into the shared pipeline with diffusers'
adapter API (``load_lora_weights(..., adapter_name=...)``, ``set_adapters`` with the weights) and
unloads them afterwards (``unload_lora_weights``: the original modules come back, nothing is ever
fused into the shared weights). The generator does this inside one turn of the device gate per
panel, around the drawing AND the face pass, and holds the gate's ``adapters`` lock meanwhile, so
neither another visitor's panel nor a training step (even with ``runtime.overlap_training``) ever
runs while a comic's LoRA is in the modules (:mod:`core.concurrency`).

Kohya (``lora_unet_*``, ``lora_te1_*``, ``lora_te2_*``) and diffusers/peft key layouts load alike:
diffusers converts them. A name is a file stem in ``loras_dir``; a comic naming one the server
lacks is refused in one line before anything is drawn (:func:`check_loras`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import GenerationError

__all__ = [
    "MAX_LORAS",
    "MAX_WEIGHT",
    "LoraChoice",
    "available_loras",
    "check_loras",
    "lora_key",
    "loras_applied",
]

MAX_LORAS = 4        # LoRAs per comic
MAX_WEIGHT = 2.0     # |weight| of one LoRA


@dataclass(frozen=True)
class LoraChoice:
    """One style LoRA of a comic: ``name`` (the file stem in ``loras_dir``) and ``weight``
    (the adapter's scale, 0 = off; 1 = as trained)."""

    name: str
    weight: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "weight": self.weight}


def available_loras(folder: str | Path | None) -> list[str]:
    """Names (file stems) of the ``.safetensors`` files directly in ``folder``, sorted; [] when
    the folder is missing."""
    if not folder or not Path(folder).is_dir():
        return []
    return sorted(p.stem for p in Path(folder).iterdir()
                  if p.suffix.lower() == ".safetensors" and p.is_file() and not p.name.startswith("."))


def check_loras(choices: Sequence[LoraChoice], folder: str | Path | None) -> tuple[LoraChoice, ...]:
    """The choices with a non-zero weight, checked: each names a LoRA of ``folder`` (weight 0:
    off, dropped unchecked), finite
    weights within ``MAX_WEIGHT``, at most ``MAX_LORAS``, no name twice. One-line
    :class:`GenerationError` otherwise (e.g. a project naming a LoRA this server lacks)."""
    known = set(available_loras(folder))
    active: list[LoraChoice] = []
    for choice in choices:
        if not isinstance(choice.weight, (int, float)) or isinstance(choice.weight, bool) or \
                not math.isfinite(choice.weight) or abs(choice.weight) > MAX_WEIGHT:
            raise GenerationError(f"the LoRA '{choice.name}' has weight {choice.weight!r}; "
                                    f"use a number from -{MAX_WEIGHT:g} to {MAX_WEIGHT:g}")
        if choice.weight == 0:
            continue  # off: even a LoRA this server lacks may stay listed at weight 0
        if choice.name not in known:
            where = f"'{folder}'" if folder else "no LoRA folder (--loras DIR)"
            raise GenerationError(f"the comic uses the LoRA '{choice.name}', which this server "
                                    f"does not have (it has {where}); add the file or set its weight to 0")
        if any(c.name == choice.name for c in active):
            raise GenerationError(f"the LoRA '{choice.name}' is chosen twice")
        active.append(LoraChoice(choice.name, float(choice.weight)))
    if len(active) > MAX_LORAS:
        raise GenerationError(f"{len(active)} LoRAs are chosen; at most {MAX_LORAS} per comic")
    return tuple(active)


def lora_key(choices: Sequence[LoraChoice]) -> tuple[tuple[str, float], ...]:
    """What encoded prompts depend on (a LoRA may change the text encoders): names and weights."""
    return tuple((c.name, float(c.weight)) for c in choices if c.weight)


@contextlib.contextmanager
def loras_applied(pipe: Any, choices: Sequence[LoraChoice], folder: str | Path | None) -> Iterator[None]:
    """Load ``choices`` into ``pipe``'s modules as adapters with their weights; unload on exit.

    The caller holds the device gate (and its ``adapters`` lock): the modules are shared by
    every pipeline copy, the inpainting pipeline of the face pass and the trainer.
    """
    active = [c for c in choices if c.weight]
    if not active:
        yield
        return
    names: list[str] = []
    try:
        for i, choice in enumerate(active):
            adapter = f"comic_lora_{i}"
            pipe.load_lora_weights(str(Path(folder) / f"{choice.name}.safetensors"), adapter_name=adapter)
            names.append(adapter)
        pipe.set_adapters(names, adapter_weights=[c.weight for c in active])
        yield
    finally:
        if names:
            pipe.unload_lora_weights()  # the original modules back: nothing fused, nothing left
