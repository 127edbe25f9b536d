"""Model architectures for the benchmarks (``--arch``).

* ``preset`` — the components of a loaded preset (``--preset tiny`` runs anywhere in seconds;
  ``--preset sdxl`` needs the downloaded weights).
* ``sdxl-random`` — the FULL-SIZE Stable Diffusion XL base 1.0 architecture with random weights:
  the real configs of ``stabilityai/stable-diffusion-xl-base-1.0`` (UNet, CLIP ViT-L and OpenCLIP
  bigG text encoders, the 8x VAE) and the ViT-B/16 face-recognition encoder, written out below,
  with the real CLIP tokenizers. The arithmetic and the memory equal the real weights', so it
  measures speed and memory on a machine that cannot download 7 GB. It is built directly on the
  target device in the target dtype (no float32 CPU copy), so on an H200 it takes seconds.

Parameter counts (checked on the meta device in ``tests/test_bench_arch.py``) equal the published
ones: UNet 2,567,463,684; text encoder 123,060,480; text encoder 2 694,659,840; VAE 83,653,863.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Iterator

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, ViTConfig, ViTModel

from configs import AppConfig, load_config
from models import tiny
from models.clip_tokenizer import build_clip_tokenizer
from models.loading import Components, build_components, fix_pooled_eos, make_sampler

ARCH_CHOICES = ("preset", "sdxl-random")

# stabilityai/stable-diffusion-xl-base-1.0, unet/config.json
SDXL_UNET_CONFIG: dict[str, Any] = dict(
    sample_size=128, in_channels=4, out_channels=4, center_input_sample=False,
    flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    mid_block_type="UNetMidBlock2DCrossAttn",
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    only_cross_attention=False, block_out_channels=(320, 640, 1280), layers_per_block=2,
    downsample_padding=1, mid_block_scale_factor=1, act_fn="silu", norm_num_groups=32,
    norm_eps=1e-5, cross_attention_dim=2048, transformer_layers_per_block=(1, 2, 10),
    attention_head_dim=(5, 10, 20), num_attention_heads=None, dual_cross_attention=False,
    use_linear_projection=True, class_embed_type=None, addition_embed_type="text_time",
    addition_time_embed_dim=256, num_class_embeds=None, upcast_attention=False,
    resnet_time_scale_shift="default", projection_class_embeddings_input_dim=2816,
    conv_in_kernel=3, conv_out_kernel=3, time_embedding_type="positional",
)

# text_encoder/config.json: OpenAI CLIP ViT-L/14 text tower (no projection used by SDXL)
SDXL_TEXT_ENCODER_CONFIG: dict[str, Any] = dict(
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
    num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
    layer_norm_eps=1e-5, projection_dim=768, bos_token_id=0, eos_token_id=2, pad_token_id=1,
)

# text_encoder_2/config.json: OpenCLIP ViT-bigG/14 text tower with its 1280 projection
SDXL_TEXT_ENCODER_2_CONFIG: dict[str, Any] = dict(
    vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
    num_attention_heads=20, max_position_embeddings=77, hidden_act="gelu",
    layer_norm_eps=1e-5, projection_dim=1280, bos_token_id=0, eos_token_id=2, pad_token_id=1,
)

# vae/config.json (the sdxl preset's madebyollin/sdxl-vae-fp16-fix has the same shapes and
# force_upcast=False, which is what the preset runs)
SDXL_VAE_CONFIG: dict[str, Any] = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, norm_num_groups=32,
    block_out_channels=(128, 256, 512, 512), act_fn="silu", sample_size=1024,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    scaling_factor=tiny.VAE_SCALING_FACTOR, force_upcast=False,
)

# jayanta/vit-base-patch16-224-in21k-face-recognition: a plain ViT-B/16 (loaded without pooler)
FR_VIT_CONFIG: dict[str, Any] = dict(
    hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
    hidden_act="gelu", image_size=224, patch_size=16, num_channels=3, layer_norm_eps=1e-12,
)

# Published parameter counts of the SDXL base 1.0 components (and ViT-B/16 without pooler).
PUBLISHED_PARAMETERS: dict[str, int] = {
    "unet": 2_567_463_684, "text_encoder": 123_060_480, "text_encoder_2": 694_659_840,
    "vae": 83_653_863, "fr_vit": 85_798_656,
}


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Set ``torch``'s default floating dtype inside the block, restoring it afterwards."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def count_parameters(module: torch.nn.Module) -> int:
    """Number of parameter elements of ``module`` (works on the meta device)."""
    return sum(p.numel() for p in module.parameters())


def _sdxl_modules(fr_vit: bool) -> dict[str, torch.nn.Module]:
    """Instantiate the full-size modules under the caller's device / dtype context."""
    modules: dict[str, torch.nn.Module] = dict(
        text_encoder=CLIPTextModel(CLIPTextConfig(**SDXL_TEXT_ENCODER_CONFIG)),
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**SDXL_TEXT_ENCODER_2_CONFIG)),
        unet=UNet2DConditionModel(**SDXL_UNET_CONFIG),
        vae=AutoencoderKL(**SDXL_VAE_CONFIG),
    )
    if fr_vit:
        modules["fr_vit"] = ViTModel(ViTConfig(**FR_VIT_CONFIG), add_pooling_layer=False)
    return modules


def sdxl_parameter_counts() -> dict[str, int]:
    """Parameter count of each full-size module, built on the meta device (no memory, < 2 s)."""
    with torch.device("meta"):
        modules = _sdxl_modules(fr_vit=True)
    return {name: count_parameters(m) for name, m in modules.items()}


def sdxl_meta_unet() -> UNet2DConditionModel:
    """The full-size SDXL UNet on the meta device (shapes only; for FLOP counting)."""
    with torch.device("meta"):
        return UNet2DConditionModel(**SDXL_UNET_CONFIG)


def _runtime_config(dtype: torch.dtype, device: torch.device) -> AppConfig:
    """The sdxl preset with its runtime section naming ``device`` and ``dtype``."""
    config = load_config("sdxl")
    dtype_name = str(dtype).removeprefix("torch.")
    runtime = dataclasses.replace(
        config.runtime, device=device.type if device.type in ("cuda", "cpu", "mps") else "auto",
        dtype=dtype_name if dtype_name in ("float16", "bfloat16", "float32") else "auto")
    return config.replace(runtime=runtime)


def build_sdxl_random(dtype: torch.dtype, device: torch.device | str, seed: int = 0,
                      face_models: bool = True) -> Components:
    """Full-size SDXL base 1.0 + ViT-B/16 with random weights, built on ``device`` in ``dtype``.

    Returns a :class:`models.loading.Components` (so anything that accepts loaded components
    accepts it): real CLIP tokenizers (tokenizer 2 pads with "!"), DPM-Solver multistep sampler
    and DDPM training scheduler on SDXL's schedule, pooled-EOS fix applied, every module frozen
    and in eval mode. The FR-ViT stays float32 as in the loader. ``face_parser`` is facexlib's
    BiSeNet with random weights when facexlib is installed, else None; ``face_detector`` is None
    (detection runs once per photo on the CPU and is not part of these benchmarks).
    Weights are drawn at their default initialisation; values are meaningless, shapes are real.
    """
    device = torch.device(device)
    config = _runtime_config(dtype, device)
    rng = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng):
        torch.manual_seed(seed)
        with torch.device(device), default_dtype(dtype):
            modules = _sdxl_modules(fr_vit=False)
        with torch.device(device):
            fr_vit = ViTModel(ViTConfig(**FR_VIT_CONFIG), add_pooling_layer=False)
        face_parser = _random_face_parser(device) if face_models else None
    tokenizer, tokenizer_2 = build_clip_tokenizer(), build_clip_tokenizer(pad_token="!")
    for module in modules.values():  # already on ``device`` in ``dtype``: no copy, no cast
        module.eval().requires_grad_(False)
    fix_pooled_eos(modules["text_encoder"], tokenizer)
    fix_pooled_eos(modules["text_encoder_2"], tokenizer_2)
    fr_vit.eval().requires_grad_(False)
    return Components(config=config, device=device, dtype=dtype, tokenizer=tokenizer,
                      tokenizer_2=tokenizer_2, scheduler=make_sampler(config.generation.sampler,
                                                                      tiny.sampling_scheduler()),
                      train_scheduler=tiny.training_scheduler(), fr_vit=fr_vit,
                      face_parser=face_parser, face_detector=None, **modules)  # type: ignore[arg-type]


def _random_face_parser(device: torch.device) -> torch.nn.Module | None:
    try:
        from facexlib.parsing.bisenet import BiSeNet
    except ImportError:
        return None
    parser = BiSeNet(num_class=19).to(device).eval()
    parser.requires_grad_(False)
    return parser


def build_arch(arch: str, device: torch.device | str, dtype: torch.dtype,
               preset: str = "tiny", seed: int = 0) -> Components:
    """Components for ``--arch``: ``sdxl-random`` (built on ``device`` in ``dtype``) or
    ``preset`` (the named preset loaded on ``device`` in ``dtype`` by the app's own loader; the
    face models and the FR-ViT stay float32, the face models are left out where facexlib or dlib
    is not installed). Always a fresh, uncached copy: the benchmarks switch dtypes and
    attention processors in place, which must not leak into the app's shared components."""
    if arch == "sdxl-random":
        return build_sdxl_random(dtype=dtype, device=device, seed=seed)
    if arch != "preset":
        raise ValueError(f"unknown arch {arch!r}; choose from {', '.join(ARCH_CHOICES)}")
    device = torch.device(device)
    config = load_config(preset)
    runtime = dataclasses.replace(config.runtime, device=device.type,
                                  dtype=str(dtype).removeprefix("torch."))
    return build_components(config.replace(runtime=runtime), face_models=face_packages_present())


def face_packages_present() -> bool:
    """Whether facexlib (face parser) and dlib (detector) import here: a bare GPU image may lack
    both, and the benchmarks never detect or parse a face (their photo is pre-aligned)."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("facexlib", "dlib"))


__all__ = [
    "ARCH_CHOICES", "FR_VIT_CONFIG", "PUBLISHED_PARAMETERS", "SDXL_TEXT_ENCODER_2_CONFIG",
    "SDXL_TEXT_ENCODER_CONFIG", "SDXL_UNET_CONFIG", "SDXL_VAE_CONFIG", "build_arch",
    "build_sdxl_random", "count_parameters", "default_dtype", "sdxl_meta_unet",
    "sdxl_parameter_counts",
]
