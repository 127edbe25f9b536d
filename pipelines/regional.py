"""Regional identity binding: each character's identity acts only inside its place.

With two or three characters in one prompt, every signal word's cross-attention reaches the whole
picture and faces borrow from each other. :class:`RegionalAttnProcessor` replaces diffusers'
``AttnProcessor2_0`` on the SDXL UNet's cross-attention layers (``attn2``) for such a panel. It
has two modes, chosen by the :class:`RegionPlan`:

**Per-character prompts** (``plan.prompts`` > 0, ``generation.character_prompts``, the default;
the approach of diffusers' community regional-prompting pipeline). The conditioning holds
``prompts`` = 1 + characters prompts of ``sequence_length`` tokens each, concatenated along the
sequence: ``[background | character 1 | character 2 | ...]``, each encoded on its own
(:mod:`pipelines.character_prompts`), so no prompt ever saw another character's rows. Each
conditional image position attends to every prompt *separately* (one softmax per prompt) and the
outputs are blended with the region weights: ``out = sum_i w_i * attn(q, prompt_i) +
(1 - sum_i w_i) * attn(q, background)``, with ``w_i`` character ``i``'s feathered mask (scaled
down where user-placed regions overlap so that the weights never sum over 1). The unconditional
rows attend to the negative prompt (the first segment of the negative conditioning) exactly as
plain attention does. Character 2's region therefore reads nothing that depends on character 1's
rows (the leak test in ``tests/test_pipe_regional.py`` checks it bit for bit).

**Shared prompt with a logit bias** (``plan.prompts`` == 0, ``generation.character_prompts:
false``, the earlier code, kept for comparison). One prompt holds every character; an additive
bias on the attention logits of the conditional rows confines the signal words:

* image positions inside character ``i``'s region see ``i``'s signal tokens, weighted by the
  region's feathered mask (bias ``log m``, soft edges), and never another character's;
* positions outside every region see no signal tokens (bias ``-inf``: exactly zero attention);
* every other prompt token (start, the sentence, style words, padding) is seen everywhere;
* the unconditional rows of classifier-free guidance (the negative prompt, which holds no signal
  words) get a zero bias: the same logits as without regions.

This mode cannot isolate identities: CLIP's text encoders are causal, so every token after a
character's signal words (the next character's own tokens, the end and padding tokens) and the
pooled embedding depend on them.

A call whose batch or conditioning length does not match the plan raises
:class:`RegionalMismatch` (it never silently drops the regions).

Masks are evaluated at each cross-attention resolution of the UNet (the latent grid and its
halvings) from the 0-1 boxes of :mod:`pipelines.regions`: a cell is inside a region when its centre
is; the feather ramps the weight from 0 at an inner edge to 1 at ``feather`` inside it (edges on
the frame border are not feathered). All biases are built before the pipeline call
(:meth:`RegionalAttnProcessor.set_plan`) so the processor only indexes a dict: nothing is created
or mutated inside the UNet's forward, which keeps ``torch.compile`` graphs stable.

Thread safety: the shared UNet is never changed. :func:`regional_unet` builds a *view*: a
shallow copy of the module tree along the paths to every ``attn2`` (parameters, buffers and
every other module shared, not copied), whose ``attn2`` copies carry one processor. Plain panels
and training keep using the untouched UNet, so a one-character panel is drawn by exactly the
code it was drawn by before. The generator keeps one view per Components and sets the
processor's plan only while it holds the device gate (one panel at a time).
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from pipelines.regions import Region


@dataclass(frozen=True)
class RegionPlan:
    """What regional attention needs to know about one panel call.

    Attributes:
        tokens: per character, the token positions of its signal words in the 77-token prompt
            (:meth:`pipelines.binding.SignalWordBinder.signal_positions`); unused (may be empty
            groups) with per-character prompts.
        regions: per character, its box ``(x0, y0, x1, y1)`` in 0-1 units.
        latent_size: (height, width) of the latents (pixels / the VAE's scale factor).
        images: images per prompt (candidates) in the batch.
        guidance: True when the batch is [unconditional x images, conditional x images] (CFG).
        feather: soft edge width in 0-1 units of the panel (0: hard edges).
        sequence_length: tokens per prompt (77 on CLIP).
        prompts: 0 for one shared prompt (logit bias); else the number of prompt segments in
            the conditioning, background first then one per character (1 + characters).
    """

    tokens: tuple[tuple[int, ...], ...]
    regions: tuple[Region, ...]
    latent_size: tuple[int, int]
    images: int = 1
    guidance: bool = True
    feather: float = 0.05
    sequence_length: int = 77
    prompts: int = 0

    @property
    def batch(self) -> int:
        return self.images * (2 if self.guidance else 1)

    @property
    def conditioning_length(self) -> int:
        """Tokens of the conditioning the UNet receives: ``prompts * sequence_length`` (or one
        prompt's)."""
        return self.sequence_length * max(1, self.prompts)


class RegionalMismatch(RuntimeError):
    """A cross-attention call that does not fit the panel's :class:`RegionPlan` (batch, image
    positions or conditioning length): the regions would otherwise be silently dropped."""


def region_weights(region: Region, height: int, width: int, feather: float) -> torch.Tensor:
    """The feathered mask of one region on a ``height`` x ``width`` grid: float32 (height*width,).

    A cell is inside when its centre lies strictly inside the box (box edges on the frame border
    count as open, so a box reaching the border covers the border cells); outside cells weigh
    exactly 0. Inside, the weight is ``min(1, d / feather)`` with ``d`` the centre's distance to
    the nearest box edge that is not on the frame border (1 everywhere when ``feather`` is 0).
    """
    x0, y0, x1, y1 = region
    u = (torch.arange(width, dtype=torch.float64) + 0.5) / width
    v = (torch.arange(height, dtype=torch.float64) + 0.5) / height
    v, u = torch.meshgrid(v, u, indexing="ij")
    inf = torch.full_like(u, math.inf)
    distances = torch.stack([u - x0 if x0 > 0 else inf, x1 - u if x1 < 1 else inf,
                             v - y0 if y0 > 0 else inf, y1 - v if y1 < 1 else inf])
    inside = (u > x0 if x0 > 0 else u >= 0) & (u < x1) & (v > y0 if y0 > 0 else v >= 0) & (v < y1)
    nearest = distances.min(dim=0).values
    weight = torch.ones_like(u) if feather <= 0 else (nearest / feather).clamp(max=1.0)
    return torch.where(inside, weight, torch.zeros_like(u)).reshape(-1).to(torch.float32)


def attention_bias(plan: RegionPlan, height: int, width: int) -> torch.Tensor:
    """The additive logit bias of one resolution: float32 (batch, 1, height*width, tokens).

    Conditional rows: ``log(weight_i)`` at character ``i``'s signal tokens (``-inf`` outside its
    region), 0 at every other token. Unconditional rows (the first ``images`` rows with
    guidance): 0. The head dimension is 1 and broadcasts.
    """
    cells = height * width
    conditional = torch.zeros(cells, plan.sequence_length, dtype=torch.float32)
    for positions, region in zip(plan.tokens, plan.regions):
        if not positions:
            continue
        log_weight = region_weights(region, height, width, plan.feather).log()  # log 0 = -inf
        conditional[:, list(positions)] = log_weight[:, None]
    rows = [torch.zeros_like(conditional)] * (plan.images if plan.guidance else 0) + \
        [conditional] * plan.images
    return torch.stack(rows)[:, None]


def blend_weights(plan: RegionPlan, height: int, width: int) -> torch.Tensor:
    """Per-prompt blend weights of one resolution: float32 (prompts, height*width).

    Row ``1 + i`` is character ``i``'s feathered mask (:func:`region_weights`), divided by the
    cell's total where overlapping user places sum over 1; row 0 (the background prompt) takes
    the rest, ``1 - sum_i``. Every column sums to 1.
    """
    masks = torch.stack([region_weights(region, height, width, plan.feather) for region in plan.regions])
    masks = masks / masks.sum(dim=0).clamp(min=1.0)
    return torch.cat([(1.0 - masks.sum(dim=0)).clamp(min=0.0)[None], masks])


def attention_resolutions(latent_size: tuple[int, int], levels: int) -> list[tuple[int, int]]:
    """(height, width) of the UNet's feature maps: the latent grid, then ceil-halved per level."""
    height, width = latent_size
    sizes = []
    for _ in range(levels):
        sizes.append((height, width))
        height, width = -(-height // 2), -(-width // 2)
    return sizes


class RegionalAttnProcessor(AttnProcessor2_0):
    """``AttnProcessor2_0`` with regions for cross-attention: per-prompt blending or a
    per-resolution attention bias (see module).

    Without a plan (:meth:`set_plan` not called, or :meth:`clear` after a call) it runs
    ``AttnProcessor2_0`` unchanged. With a plan, a call it cannot apply the plan to (another
    batch size, image resolution or conditioning length, no conditioning, an explicit attention
    mask, spatial or group norm) raises :class:`RegionalMismatch`.

    Attributes:
        biases: sequence length of the image (height*width) -> bias (batch, 1, cells, tokens) on
            the UNet's device and dtype (shared-prompt mode), or blend weights
            (1, prompts, 1, cells, 1) (per-character prompts).
        plan: the current plan (None without one).
        capture: None, or a list that receives, per biased call, a dict with ``cells`` (height*width)
            and ``probs`` float32 (batch, cells, tokens): the attention probabilities averaged
            over heads (debugging and tests; costs an extra softmax).
    """

    def __init__(self) -> None:
        super().__init__()
        self.biases: dict[int, torch.Tensor] = {}
        self.capture: list[dict[str, Any]] | None = None
        self.plan: RegionPlan | None = None

    def set_plan(self, plan: RegionPlan, levels: int, device: torch.device, dtype: torch.dtype) -> None:
        """Build the bias (or blend weights) of every resolution the UNet can attend at (before
        the pipeline call)."""
        if plan.prompts and plan.prompts != len(plan.regions) + 1:
            raise RegionalMismatch(f"{plan.prompts} prompts for {len(plan.regions)} regions; "
                                   "per-character prompts need the background and one per region")
        biases = {}
        for height, width in attention_resolutions(plan.latent_size, levels):
            if plan.prompts:
                weights = blend_weights(plan, height, width)
                biases[height * width] = weights[None, :, None, :, None].to(device=device, dtype=dtype)
                continue
            bias = attention_bias(plan, height, width)
            # rows padded to a multiple of 16 elements, then sliced back: the mask's row stride is
            # then aligned as CUDA's memory-efficient SDPA kernel wants, so it is not re-padded
            # (copied) on every call
            tokens = bias.shape[-1]
            padded = torch.zeros(*bias.shape[:-1], -(-tokens // 16) * 16, device=device, dtype=dtype)
            padded[..., :tokens] = bias.to(device=device, dtype=dtype)
            biases[height * width] = padded[..., :tokens]
        self.biases = biases
        self.plan = plan

    def clear(self) -> None:
        """Forget the plan: the processor behaves as ``AttnProcessor2_0`` again."""
        self.biases = {}
        self.plan = None

    def _checked(self, attn: Attention, hidden_states: torch.Tensor,
                 encoder_hidden_states: torch.Tensor | None,
                 attention_mask: torch.Tensor | None) -> tuple[RegionPlan, torch.Tensor]:
        """The plan and this call's bias / weights; RegionalMismatch when the call does not fit."""
        plan = self.plan
        assert plan is not None
        cells = hidden_states.shape[1] if hidden_states.ndim == 3 else None
        bias = self.biases.get(cells) if cells is not None else None
        problem = None
        if bias is None:
            problem = (f"image positions {tuple(hidden_states.shape[1:-1])} match no resolution of "
                       f"the plan ({sorted(self.biases)})")
        elif encoder_hidden_states is None:
            problem = "the call has no text conditioning"
        elif attention_mask is not None or attn.spatial_norm is not None or attn.group_norm is not None:
            problem = "the call has an attention mask, spatial norm or group norm"
        elif hidden_states.shape[0] != plan.batch or encoder_hidden_states.shape[0] != plan.batch:
            problem = (f"batch {hidden_states.shape[0]} / conditioning batch "
                       f"{encoder_hidden_states.shape[0]}, the plan expects {plan.batch}")
        elif encoder_hidden_states.shape[1] != plan.conditioning_length:
            problem = (f"conditioning of {encoder_hidden_states.shape[1]} tokens, the plan expects "
                       f"{plan.conditioning_length} ({max(1, plan.prompts)} x {plan.sequence_length})")
        if problem is not None:
            raise RegionalMismatch(f"regional attention does not fit this call: {problem}")
        return plan, bias  # type: ignore[return-value]

    def __call__(self, attn: Attention, hidden_states: torch.Tensor,
                 encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 *args, **kwargs) -> torch.Tensor:
        if self.plan is None:
            return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb,
                                    *args, **kwargs)
        plan, bias = self._checked(attn, hidden_states, encoder_hidden_states, attention_mask)
        if plan.prompts:
            return self._blend(attn, plan, bias, hidden_states, encoder_hidden_states)
        residual = hidden_states
        batch_size = hidden_states.shape[0]
        query = attn.to_q(hidden_states)
        if attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        head_dim = key.shape[-1] // attn.heads
        query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        bias = bias.to(query.dtype)
        if self.capture is not None:
            logits = (query.float() @ key.float().transpose(-1, -2)) / math.sqrt(head_dim) + bias.float()
            self.capture.append({"cells": hidden_states.shape[1],
                                 "probs": logits.softmax(dim=-1).mean(dim=1).detach().cpu()})
        hidden_states = F.scaled_dot_product_attention(query, key, value, attn_mask=bias,
                                                       dropout_p=0.0, is_causal=False)
        hidden_states = hidden_states.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)
        hidden_states = hidden_states.to(query.dtype)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor

    def _blend(self, attn: Attention, plan: RegionPlan, weights: torch.Tensor,
               hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        """Per-character prompts: each conditional row attends to each prompt segment on its own
        and blends the outputs with ``weights`` (1, prompts, 1, cells, 1); unconditional rows
        attend to the first segment (the negative prompt) only.

        Shapes: ``hidden_states`` (batch, cells, channels), ``encoder_hidden_states`` (batch,
        prompts * sequence_length, width).
        """
        residual = hidden_states
        batch, cells, _ = hidden_states.shape
        prompts, length = plan.prompts, plan.sequence_length
        uncond = plan.images if plan.guidance else 0
        heads = attn.heads
        query = attn.to_q(hidden_states)
        head_dim = query.shape[-1] // heads
        query = query.view(batch, cells, heads, head_dim).transpose(1, 2)  # (B, H, cells, d)
        if attn.norm_q is not None:
            query = attn.norm_q(query)

        def keys_values(context: torch.Tensor, segments: int) -> tuple[torch.Tensor, torch.Tensor]:
            """(rows, segments * length, width) -> key, value (rows * segments, H, length, d)."""
            if attn.norm_cross:
                context = attn.norm_encoder_hidden_states(context)
            rows = context.shape[0]
            key, value = attn.to_k(context), attn.to_v(context)
            key, value = (t.view(rows * segments, length, heads, head_dim).transpose(1, 2) for t in (key, value))
            if attn.norm_k is not None:
                key = attn.norm_k(key)
            return key, value

        outputs = []
        if uncond:
            key, value = keys_values(encoder_hidden_states[:uncond, :length], 1)
            outputs.append(F.scaled_dot_product_attention(query[:uncond], key, value, dropout_p=0.0,
                                                          is_causal=False))
        rows = batch - uncond
        key, value = keys_values(encoder_hidden_states[uncond:], prompts)
        per_prompt = query[uncond:, None].expand(rows, prompts, heads, cells, head_dim)
        per_prompt = per_prompt.reshape(rows * prompts, heads, cells, head_dim)
        blended = F.scaled_dot_product_attention(per_prompt, key, value, dropout_p=0.0, is_causal=False)
        blended = blended.view(rows, prompts, heads, cells, head_dim)
        outputs.append((blended * weights.to(blended.dtype)).sum(dim=1))
        hidden_states = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
        hidden_states = hidden_states.transpose(1, 2).reshape(batch, cells, heads * head_dim)
        hidden_states = attn.to_out[0](hidden_states.to(query.dtype))
        hidden_states = attn.to_out[1](hidden_states)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def cross_attention_names(unet: torch.nn.Module) -> list[str]:
    """Qualified names of the UNet's cross-attention modules (``...transformer_blocks.N.attn2``)."""
    return [name for name, module in unet.named_modules()
            if name.rsplit(".", 1)[-1] == "attn2" and isinstance(module, Attention)]


def regional_unet(unet: torch.nn.Module, processor: RegionalAttnProcessor) -> torch.nn.Module:
    """A view of ``unet`` whose cross-attention layers use ``processor``; ``unet`` is unchanged.

    Modules on the paths from the root to each ``attn2`` are shallow-copied (their child dicts
    are new, their parameters, buffers and hooks are the same objects); every other module is
    shared. An ``nn.Module.compile``-d UNet (or block, with regional compilation) gives a view
    compiled the same way (see
    :func:`models.loading.set_compiled`); accelerate's offload hook on the root is rebound
    to the view.
    """
    from models.loading import compiled_with, set_compiled

    targets = cross_attention_names(unet)
    if not targets:
        raise ValueError("the UNet has no cross-attention (attn2) layers")
    on_path = {""} | {".".join(name.split(".")[:k]) for name in targets
                      for k in range(1, name.count(".") + 2)}

    def clone(module: torch.nn.Module, prefix: str) -> torch.nn.Module:
        twin = copy.copy(module)
        twin._modules = dict(module._modules)
        for child_name, child in module._modules.items():
            path = f"{prefix}.{child_name}" if prefix else child_name
            if child is not None and path in on_path:
                twin._modules[child_name] = clone(child, path)
        if prefix in targets:
            twin.processor = processor
        # a compiled module's compiled call is bound to the original (its processors): compile
        # the copy the same way (the root with whole-UNet compile, the blocks with regional)
        compiled = compiled_with(module)
        twin._compiled_call_impl = None
        if compiled is not None:
            set_compiled(twin, True, mode=compiled[0], backend=compiled[1])
        return twin

    view = clone(unet, "")
    _rebind_offload_hook(unet, view)
    return view


def _rebind_offload_hook(module: torch.nn.Module, view: torch.nn.Module) -> None:
    """accelerate's ``add_hook_to_module`` stores ``forward`` (a partial of the module) and
    ``_old_forward`` (the module's bound forward) on the instance: point both at the view."""
    if "_old_forward" not in view.__dict__:
        return
    old = view.__dict__["_old_forward"]
    view._old_forward = old.__func__.__get__(view) if getattr(old, "__self__", None) is module else old
    forward = view.__dict__.get("forward")
    if isinstance(forward, functools.partial) and forward.args[:1] == (module,):
        view.forward = functools.update_wrapper(functools.partial(forward.func, view, *forward.args[1:]),
                                                view._old_forward)


def unet_levels(unet: Any) -> int:
    """How many resolutions the UNet works at (one per down block)."""
    return len(unet.config.block_out_channels)


def make_plan(tokens: Sequence[Sequence[int]], regions: Sequence[Region], latent_size: tuple[int, int],
              images: int, guidance: bool, feather: float, sequence_length: int = 77,
              prompts: int = 0) -> RegionPlan:
    """A :class:`RegionPlan` from plain sequences (one entry per character; ``tokens`` may be
    empty with per-character prompts, ``prompts`` = 1 + characters)."""
    if prompts and not tokens:
        tokens = [()] * len(regions)
    if len(tokens) != len(regions):
        raise ValueError(f"{len(tokens)} token groups for {len(regions)} regions")
    return RegionPlan(tokens=tuple(tuple(int(p) for p in group) for group in tokens),
                      regions=tuple(tuple(float(v) for v in r) for r in regions),  # type: ignore[misc]
                      latent_size=(int(latent_size[0]), int(latent_size[1])), images=int(images),
                      guidance=bool(guidance), feather=float(feather), sequence_length=int(sequence_length),
                      prompts=int(prompts))


__all__ = ["RegionPlan", "RegionalAttnProcessor", "RegionalMismatch", "attention_bias",
           "attention_resolutions", "blend_weights",
           "cross_attention_names", "make_plan", "region_weights", "regional_unet", "unet_levels"]
