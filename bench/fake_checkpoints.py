"""Fake single-file SDXL checkpoints for tests: the tiny pipeline written in the ORIGINAL key layout.

A fine-tuned SDXL checkpoint (Civitai, a trainer's output) is one ``.safetensors`` file in the
Stability (``sgm``) layout: ``model.diffusion_model.*`` (UNet: ``input_blocks``, ``middle_block``,
``output_blocks``), ``first_stage_model.*`` (VAE: ``encoder.down.{i}.block.{j}``, ``mid.attn_1`` as
1x1 convolutions), ``conditioner.embedders.0.transformer.*`` (CLIP-L, Hugging Face names) and
``conditioner.embedders.1.model.*`` (OpenCLIP bigG: ``transformer.resblocks.N`` with fused
``attn.in_proj_weight``, ``text_projection`` as ``width x projection``).

:func:`write_single_file` maps the tiny components (:mod:`models.tiny`, any layers per block and
number of blocks) into that layout, so ``from_single_file`` runs diffusers' real conversion on
them, offline. The top-level names come from diffusers' own ``DIFFUSERS_TO_LDM_MAPPING``; the
block numbering is the generic rule of the original UNet/VAE (``layers_per_block + 1`` slots per
UNet level). ``perturb`` scales the text encoders' token tables, giving a checkpoint whose
encoders differ from the preset's (for the identity fingerprint tests).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING
from safetensors.torch import save_file
from transformers import CLIPTextModel, CLIPTextModelWithProjection

RESNET_NAMES = {"norm1": "in_layers.0", "conv1": "in_layers.2", "norm2": "out_layers.0",
                "conv2": "out_layers.3", "time_emb_proj": "emb_layers.1",
                "conv_shortcut": "skip_connection"}
VAE_ATTENTION_NAMES = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v",
                       "to_out.0": "proj_out"}


def _rename_resnet(rest: str) -> str:
    head, _, tail = rest.partition(".")
    return f"{RESNET_NAMES.get(head, head)}.{tail}"


def unet_to_original(unet: UNet2DConditionModel) -> dict[str, torch.Tensor]:
    """``model.diffusion_model.*`` tensors of ``unet`` (an SDXL-style UNet, any depth)."""
    top = {**DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"],
           **DIFFUSERS_TO_LDM_MAPPING["unet"]["addition_embed_type"]}
    per = unet.config.layers_per_block + 1  # slots per level: L resnets (+ attention) + resampler
    out: dict[str, torch.Tensor] = {}
    for key, value in unet.state_dict().items():
        parts = key.split(".")
        if key in top:
            new = top[key]
        elif parts[0] in ("down_blocks", "up_blocks"):
            i, kind, j, rest = int(parts[1]), parts[2], int(parts[3]), ".".join(parts[4:])
            blocks = "input_blocks" if parts[0] == "down_blocks" else "output_blocks"
            offset = 1 if blocks == "input_blocks" else 0
            if kind == "resnets":
                new = f"{blocks}.{offset + i * per + j}.0.{_rename_resnet(rest)}"
            elif kind == "attentions":
                new = f"{blocks}.{offset + i * per + j}.1.{rest}"
            elif kind == "downsamplers":  # conv.weight -> op.weight
                new = f"input_blocks.{(i + 1) * per}.0.op.{rest.removeprefix('conv.')}"
            else:  # upsamplers: after the level's last resnet (and its attention)
                block = unet.up_blocks[i]
                slot = 2 if getattr(block, "attentions", None) else 1
                new = f"output_blocks.{i * per + per - 1}.{slot}.{rest}"
        elif parts[0] == "mid_block":
            kind, j, rest = parts[1], int(parts[2]), ".".join(parts[3:])
            new = (f"middle_block.{2 * j}.{_rename_resnet(rest)}" if kind == "resnets"
                   else f"middle_block.1.{rest}")
        else:
            raise ValueError(f"no original name for UNet key {key}")
        out["model.diffusion_model." + new] = value
    return out


def vae_to_original(vae: AutoencoderKL) -> dict[str, torch.Tensor]:
    """``first_stage_model.*`` tensors of ``vae`` (mid attention as 1x1 convolutions)."""
    top = DIFFUSERS_TO_LDM_MAPPING["vae"]
    levels = len(vae.config.block_out_channels)
    out: dict[str, torch.Tensor] = {}
    for key, value in vae.state_dict().items():
        parts = key.split(".")
        if key in top:
            new = top[key]
        elif parts[1] in ("down_blocks", "up_blocks"):
            coder, i, kind, rest = parts[0], int(parts[2]), parts[3], ".".join(parts[4:])
            level, name = (i, "down") if parts[1] == "down_blocks" else (levels - 1 - i, "up")
            if kind == "resnets":
                j, inner = rest.split(".", 1)
                new = f"{coder}.{name}.{level}.block.{j}.{inner.replace('conv_shortcut', 'nin_shortcut')}"
            else:  # downsamplers.0.conv / upsamplers.0.conv
                new = f"{coder}.{name}.{level}.{name}sample.{rest.split('.', 1)[1]}"
        elif parts[1] == "mid_block":
            coder, kind, j, rest = parts[0], parts[2], int(parts[3]), ".".join(parts[4:])
            if kind == "resnets":
                new = f"{coder}.mid.block_{j + 1}.{rest.replace('conv_shortcut', 'nin_shortcut')}"
            else:
                for ours, theirs in VAE_ATTENTION_NAMES.items():
                    if rest.startswith(ours + "."):
                        rest = theirs + rest[len(ours):]
                        break
                new = f"{coder}.mid.attn_1.{rest}"
                if value.dim() == 2:  # linear -> 1x1 convolution
                    value = value[:, :, None, None]
        else:
            raise ValueError(f"no original name for VAE key {key}")
        out["first_stage_model." + new] = value
    return out


def clip_l_to_original(encoder: CLIPTextModel) -> dict[str, torch.Tensor]:
    """``conditioner.embedders.0.transformer.text_model.*``: Hugging Face names under the prefix
    (transformers >= 5.6 flattens ``CLIPTextModel``'s keys; the file keeps ``text_model.``)."""
    return {"conditioner.embedders.0.transformer.text_model." + k.removeprefix("text_model."): v
            for k, v in encoder.state_dict().items() if not k.endswith("position_ids")}


def clip_g_to_original(encoder: CLIPTextModelWithProjection) -> dict[str, torch.Tensor]:
    """``conditioner.embedders.1.model.*`` in OpenCLIP names, q/k/v fused into ``in_proj``."""
    top = DIFFUSERS_TO_LDM_MAPPING["openclip"]["layers"]
    names = [(ours, theirs) for ours, theirs in DIFFUSERS_TO_LDM_MAPPING["openclip"]["transformer"].items()
             if not ours.startswith("transformer.")]
    state = {k: v for k, v in encoder.state_dict().items() if not k.endswith("position_ids")}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key in top:
            out[top[key]] = value.T.contiguous() if key == "text_projection.weight" else value
            continue
        if any(f".{p}_proj." in key for p in "kv"):
            continue  # fused with q below
        new = key
        for ours, theirs in names:
            new = new.replace(ours, theirs)
        if ".q_proj." in key:
            kind = key.rsplit(".", 1)[1]  # weight | bias
            fused = torch.cat([state[key.replace(".q_proj.", f".{p}_proj.")] for p in "qkv"])
            new = new.replace(".q_proj." + kind, f".in_proj_{kind}")
            value = fused
        out["transformer." + new] = value
    return {"conditioner.embedders.1.model." + k: v for k, v in out.items()}


def original_state_dict(parts: dict, perturb: float = 0.0) -> dict[str, torch.Tensor]:
    """Every tensor of a single-file SDXL checkpoint built from loaded ``parts``
    (``text_encoder``, ``text_encoder_2``, ``unet``, ``vae``), float32, contiguous."""
    state = {**unet_to_original(parts["unet"]), **vae_to_original(parts["vae"]),
             **clip_l_to_original(parts["text_encoder"]), **clip_g_to_original(parts["text_encoder_2"])}
    state = {k: v.detach().to("cpu", torch.float32).contiguous().clone() for k, v in state.items()}
    if perturb:
        for key in ("conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
                    "conditioner.embedders.1.model.token_embedding.weight"):
            state[key] = state[key] * (1.0 + perturb)
    return state


def write_single_file(path: Path, seed: int = 0, perturb: float = 0.0) -> Path:
    """Write the tiny preset's components (built with ``model.seed = seed``) as one original-layout
    ``.safetensors`` checkpoint at ``path``; returns ``path``."""
    from configs import load_config
    from models.loading import _load_diffusion_tiny

    config = load_config("tiny")
    config = config.replace(model=dataclasses.replace(config.model, seed=seed))
    parts = _load_diffusion_tiny(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(original_state_dict(parts, perturb), str(path), metadata={"format": "pt"})
    return path


# ----------------------------------------------------------------------------- style LoRAs

def _kohya_pairs(prefix: str, module: torch.nn.Module, suffixes: tuple[str, ...],
                 rank: int, generator: torch.Generator, scale: float) -> dict[str, torch.Tensor]:
    """kohya-style ``lora_down``/``lora_up``/``alpha`` tensors for every Linear of ``module``
    whose name ends with one of ``suffixes``; the key is ``prefix`` + the dotted name with ``_``."""
    out: dict[str, torch.Tensor] = {}
    for name, child in module.named_modules():
        if not isinstance(child, torch.nn.Linear) or not name.endswith(suffixes):
            continue
        key = prefix + name.replace(".", "_")
        out[f"{key}.lora_down.weight"] = torch.randn(rank, child.in_features, generator=generator) * 0.5
        out[f"{key}.lora_up.weight"] = torch.randn(child.out_features, rank, generator=generator) * scale
        out[f"{key}.alpha"] = torch.tensor(float(rank))
    return out


def write_lora(path: Path, seed: int = 0, rank: int = 4, scale: float = 0.5,
               text_encoders: bool = True) -> Path:
    """Write a style LoRA for the tiny architecture in kohya's SDXL key layout: ``lora_unet_*`` on
    the UNet's attention projections (diffusers module names, as kohya's sd-scripts write for
    SDXL) and, with ``text_encoders``, ``lora_te1_text_model_*`` / ``lora_te2_text_model_*`` on
    both encoders' attention projections; float32, ``alpha`` = rank. Returns ``path``."""
    from configs import load_config
    from models.loading import _load_diffusion_tiny

    parts = _load_diffusion_tiny(load_config("tiny"))
    generator = torch.Generator().manual_seed(seed)
    attention = ("to_q", "to_k", "to_v", "to_out.0")
    state = _kohya_pairs("lora_unet_", parts["unet"], attention, rank, generator, scale)
    if text_encoders:
        clip = ("q_proj", "k_proj", "v_proj", "out_proj")
        for prefix, encoder in (("lora_te1_text_model_", parts["text_encoder"]),
                                ("lora_te2_", parts["text_encoder_2"])):
            state.update(_kohya_pairs(prefix, encoder, clip, rank, generator, scale))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata={"format": "pt"})
    return path
