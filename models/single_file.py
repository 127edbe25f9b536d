"""Single-file SDXL checkpoints (one ``.safetensors`` in the original Stability key layout).

``model.base`` (or ``--base``) may name such a file instead of a hub repository. diffusers'
``from_single_file`` converts it; it needs the diffusers configs of the architecture (component
configs, tokenizers, scheduler), which come from a local folder so nothing is downloaded:

* a hub preset: the cached snapshot of ``model.pretrained`` (configs and tokenizers only,
  :func:`models.hub_files.sdxl_config_needs`);
* the tiny preset: :func:`write_tiny_configs` writes the tiny components' configs once into
  ``$COMIC_CACHE/tiny-sdxl-config``.

:func:`check_single_file` refuses in one line a path that is not a readable SDXL checkpoint
before anything loads, and :func:`single_file_sizes` counts its parameters from the header for
the memory check.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import torch
from diffusers import StableDiffusionXLPipeline

from models.hub_files import ModelUnavailable

__all__ = ["UNET_PREFIX", "check_single_file", "is_single_file", "load_single_file",
           "single_file_sizes", "write_tiny_configs"]

#: key prefixes of an SDXL single-file checkpoint: UNet, both text encoders (VAE optional)
UNET_PREFIX = "model.diffusion_model."
REQUIRED_PREFIXES = (UNET_PREFIX, "conditioner.embedders.0.transformer.",
                     "conditioner.embedders.1.model.")
MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit on the JSON header


def is_single_file(base: str | None) -> bool:
    """True when ``base`` names a single-file checkpoint (a ``.safetensors`` path), not a repo."""
    return bool(base) and str(base).lower().endswith(".safetensors")


def _header(path: Path) -> dict[str, Any]:
    """The safetensors JSON header of ``path`` (tensor names -> dtype/shape/offsets)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(8)
            if len(raw) != 8:
                raise ValueError("too short")
            size = struct.unpack("<Q", raw)[0]
            if size > MAX_HEADER_BYTES:
                raise ValueError("header too large")
            header = json.loads(handle.read(size))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ModelUnavailable(f"the checkpoint '{path}' is not a readable .safetensors file ({exc})") from None
    if not isinstance(header, dict):
        raise ModelUnavailable(f"the checkpoint '{path}' is not a readable .safetensors file")
    header.pop("__metadata__", None)
    return header


def check_single_file(path: Path) -> dict[str, Any]:
    """The header of an SDXL single-file checkpoint at ``path``; one-line
    :class:`ModelUnavailable` when it is missing, unreadable or not SDXL (no UNet or no second
    text encoder: an SD 1.x/2.x checkpoint, a LoRA, a VAE)."""
    if not path.is_file():
        raise ModelUnavailable(f"the checkpoint '{path}' does not exist")
    header = _header(path)
    missing = [p for p in REQUIRED_PREFIXES if not any(k.startswith(p) for k in header)]
    if missing:
        raise ModelUnavailable(f"'{path}' is not an SDXL checkpoint (it has no {missing[0].rstrip('.')} "
                               "weights); give a full SDXL .safetensors or a diffusers repository")
    return header


def single_file_sizes(path: Path) -> tuple[int, int, bool]:
    """``(all parameters, UNet parameters, has_vae)`` of the checkpoint, from its header."""
    header = check_single_file(path)

    def numel(info: dict[str, Any]) -> int:
        return int(torch.Size(info["shape"]).numel())

    total = sum(numel(v) for v in header.values())
    unet = sum(numel(v) for k, v in header.items() if k.startswith(UNET_PREFIX))
    return total, unet, any(k.startswith("first_stage_model.") for k in header)


def write_tiny_configs(parts: dict[str, Any], folder: Path) -> Path:
    """Write the diffusers configs of the tiny components ``parts`` (no weights) into ``folder``:
    what ``from_single_file(config=folder)`` reads. Rewritten every call (milliseconds)."""
    folder.mkdir(parents=True, exist_ok=True)
    pipe = StableDiffusionXLPipeline(**{k: parts[k] for k in (
        "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "unet", "scheduler")})
    pipe.save_config(folder)  # model_index.json
    for name in ("unet", "vae", "scheduler"):
        parts[name].save_config(folder / name)
    for name in ("text_encoder", "text_encoder_2"):
        parts[name].config.save_pretrained(folder / name)
    for name in ("tokenizer", "tokenizer_2"):
        parts[name].save_pretrained(folder / name)
    return folder


def load_single_file(path: Path, config_folder: Path, dtype: torch.dtype,
                     vae: torch.nn.Module | None = None) -> dict[str, Any]:
    """The SDXL parts of the checkpoint at ``path`` (converted by diffusers' ``from_single_file``
    with the configs of ``config_folder``, offline), as :func:`models.loading.load_diffusion_from_folder`
    returns them. ``vae``: a separately loaded VAE used instead of the checkpoint's."""
    from diffusers import DDPMScheduler

    check_single_file(path)
    extra = {"vae": vae} if vae is not None else {}
    try:
        pipe = StableDiffusionXLPipeline.from_single_file(
            str(path), config=str(config_folder), local_files_only=True, torch_dtype=dtype, **extra)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelUnavailable(f"the checkpoint '{path}' could not be loaded as SDXL: {first}") from None
    base = DDPMScheduler.from_pretrained(config_folder, subfolder="scheduler", local_files_only=True)
    return dict(tokenizer=pipe.tokenizer, tokenizer_2=pipe.tokenizer_2, text_encoder=pipe.text_encoder,
                text_encoder_2=pipe.text_encoder_2, unet=pipe.unet, vae=pipe.vae, scheduler=base,
                train_scheduler=DDPMScheduler.from_config(base.config))
