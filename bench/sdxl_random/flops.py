"""The ``flops`` section: FLOPs of every part of one panel and one training step, counted on
the meta device, and the floor in seconds at a given matrix rate."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from bench.sdxl_random.variants import _DIFFUSION_MODULES


def _meta_modules(arch: str, components: Any | None) -> dict[str, nn.Module]:
    """Shape-only copies of the diffusion modules on the meta device."""
    if arch == "sdxl-random":
        from bench.arch import _sdxl_modules

        with torch.device("meta"):
            modules = _sdxl_modules(fr_vit=False)
    else:
        modules = {n: copy.deepcopy(getattr(components, n)).to("meta") for n in _DIFFUSION_MODULES}
    for m in modules.values():  # frozen, as in training: backward computes input gradients only
        m.requires_grad_(False)
    return modules


def _flops(fn: Callable[[], Any]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return float(counter.get_total_flops())


def unet_flops(unet: nn.Module, size: int, batch: int = 1, grad: bool = False,
               pooled_dim: int = 1280, vae_factor: int = 8) -> float:
    """FLOPs of one SDXL-style UNet call on ``batch`` latents of a ``size`` x ``size`` image
    (forward, or forward + backward into the text conditioning when ``grad``), on the UNet's
    device (meta: shapes only). The weights' ``requires_grad`` decides whether weight gradients
    are part of the backward."""
    dev = next(unet.parameters()).device
    with torch.device(dev):
        x = torch.randn(batch, unet.config.in_channels, size // vae_factor, size // vae_factor)
        ehs = torch.randn(batch, 77, unet.config.cross_attention_dim, requires_grad=grad)
        cond = dict(text_embeds=torch.randn(batch, pooled_dim), time_ids=torch.randn(batch, 6))
        t = torch.full((batch,), 500.0)

    def run() -> None:
        with torch.set_grad_enabled(grad):
            out = unet(x, t, ehs, added_cond_kwargs=cond).sample
            if grad:
                out.float().square().mean().backward()
    return _flops(run)


def count_flops(modules: dict[str, nn.Module], panel_size: int, panel_steps: int,
                train_size: int, cfg: bool = True) -> dict[str, float]:
    """FLOPs (multiply-add = 2) of each part of one panel and one training step.

    Runs on whatever device ``modules`` sit on (meta: shapes only). Keys end in ``_flop``.
    """
    te1, te2, unet, vae = (modules[n] for n in _DIFFUSION_MODULES)
    dev = next(unet.parameters()).device
    d1, d2 = te1.config.hidden_size, te2.config.hidden_size
    pooled = te2.config.projection_dim
    latent_ch, factor = unet.config.in_channels, 2 ** (len(vae.config.block_out_channels) - 1)
    batch = 2 if cfg else 1

    def unet_pass(size: int, b: int, grad: bool) -> float:
        return unet_flops(unet, size, b, grad, pooled_dim=pooled, vae_factor=factor)

    def text_pass(grad: bool) -> float:
        with torch.device(dev):
            ids = torch.randint(0, 49407, (1, 77))
        total = 0.0
        for te, d in ((te1, d1), (te2, d2)):
            emb = te.get_input_embeddings()
            with torch.device(dev):
                rows = torch.randn(1, 77, d, requires_grad=grad)
            original = emb.forward
            emb.forward = lambda _ids, _rows=rows: _rows  # type: ignore[method-assign]
            try:
                def run(te: nn.Module = te) -> None:
                    out = te(ids, output_hidden_states=True)
                    if grad:
                        out.hidden_states[-2].float().mean().backward()
                total += _flops(run)
            finally:
                emb.forward = original  # type: ignore[method-assign]
        return total

    def vae_pass(size: int, encode: bool) -> float:
        with torch.device(dev):
            if encode:
                img = torch.randn(1, 3, size, size)
                return _flops(lambda: vae.encode(img).latent_dist.mean)
            lat = torch.randn(1, latent_ch, size // factor, size // factor)
        return _flops(lambda: vae.decode(lat).sample)

    with torch.no_grad():
        unet_fwd_panel = unet_pass(panel_size, batch, grad=False)
        text_fwd = text_pass(grad=False)
        vae_decode = vae_pass(panel_size, encode=False)
        vae_encode = vae_pass(train_size, encode=True)
        unet_fwd_train = unet_pass(train_size, 1, grad=False)
    unet_fwdbwd_train = unet_pass(train_size, 1, grad=True)
    text_fwdbwd = text_pass(grad=True)
    panel = panel_steps * unet_fwd_panel + (2 if cfg else 1) * text_fwd + vae_decode
    step = vae_encode + text_fwdbwd + unet_fwdbwd_train
    return {"unet_fwd_panel_flop": unet_fwd_panel, "text_encoders_fwd_flop": text_fwd,
            "vae_decode_panel_flop": vae_decode, "panel_flop": panel,
            "vae_encode_train_flop": vae_encode, "unet_fwd_train_flop": unet_fwd_train,
            "unet_fwdbwd_train_flop": unet_fwdbwd_train, "text_encoders_fwdbwd_flop": text_fwdbwd,
            "train_step_flop": step}
