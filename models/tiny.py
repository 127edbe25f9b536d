"""Tiny SDXL-shaped components: the SAME classes as the real preset, small configs, random weights.

Shapes mirror SDXL's wiring (two text encoders of different widths whose penultimate states are
concatenated into the UNet's cross-attention, a pooled projection of encoder 2 plus six
``add_time_ids`` feeding ``addition_embed_type="text_time"``, an 8x VAE), so every code path that
runs on real SDXL runs here in milliseconds:

===========================  =====================  ==============
quantity                     SDXL                   tiny
===========================  =====================  ==============
encoder 1 hidden             768                    32
encoder 2 hidden / proj      1280 / 1280            64 / 32
cross-attention dim          2048                   96
add-time embed dim           256                    8
projection input dim         2816 = 1280 + 6*256    80 = 32 + 6*8
VAE scale factor             8                      8
FR-ViT hidden                768                    32
===========================  =====================  ==============
"""

from __future__ import annotations

from diffusers import AutoencoderKL, DDPMScheduler, DPMSolverMultistepScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, ViTConfig, ViTModel

# The noise schedule of stabilityai/stable-diffusion-xl-base-1.0 (scheduler/scheduler_config.json).
SDXL_SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                     beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="leading",
                     prediction_type="epsilon", clip_sample=False, sample_max_value=1.0,
                     set_alpha_to_one=False)
VAE_SCALING_FACTOR = 0.13025
CLIP_VOCAB_SIZE = 49408
# SDXL's hub configs carry eos_token_id=2 (the pooled-output trap); the tiny ones copy it on purpose.
SDXL_CONFIG_EOS_TOKEN_ID = 2


def tiny_text_encoder(hidden: int, heads: int = 4, layers: int = 3) -> CLIPTextModel:
    """CLIP text encoder 1 (no projection), real vocabulary size, 77 positions."""
    return CLIPTextModel(_text_config(hidden, heads, layers, projection_dim=hidden))


def tiny_text_encoder_2(hidden: int, projection_dim: int, heads: int = 4,
                        layers: int = 3) -> CLIPTextModelWithProjection:
    """CLIP text encoder 2 with the pooled projection used as SDXL's ``text_embeds``."""
    return CLIPTextModelWithProjection(_text_config(hidden, heads, layers, projection_dim))


def _text_config(hidden: int, heads: int, layers: int, projection_dim: int) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=CLIP_VOCAB_SIZE, hidden_size=hidden, intermediate_size=hidden * 2,
        num_hidden_layers=layers, num_attention_heads=heads, max_position_embeddings=77,
        projection_dim=projection_dim, hidden_act="quick_gelu", bos_token_id=0,
        eos_token_id=SDXL_CONFIG_EOS_TOKEN_ID, pad_token_id=1)


def tiny_unet(cross_attention_dim: int = 96, pooled_dim: int = 32,
              addition_time_embed_dim: int = 8) -> UNet2DConditionModel:
    """An SDXL-style UNet: text_time additional embedding, two cross-attention widths joined."""
    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, transformer_layers_per_block=(1, 1),
        cross_attention_dim=cross_attention_dim, addition_embed_type="text_time",
        addition_time_embed_dim=addition_time_embed_dim,
        projection_class_embeddings_input_dim=pooled_dim + 6 * addition_time_embed_dim)


def tiny_vae() -> AutoencoderKL:
    """Four down blocks, so the latent grid is 1/8 of the image, as in SDXL."""
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=8,
        block_out_channels=(8, 16, 32, 32), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        sample_size=64, scaling_factor=VAE_SCALING_FACTOR, force_upcast=False)


def tiny_fr_vit(hidden: int = 32) -> ViTModel:
    """A ViT-B/16-shaped face encoder (224 input, 16 patches, CLS token) at a tiny width."""
    return ViTModel(ViTConfig(hidden_size=hidden, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=hidden * 2, image_size=224, patch_size=16),
                    add_pooling_layer=False)


def sampling_scheduler() -> DPMSolverMultistepScheduler:
    """DPM-Solver multistep on SDXL's noise schedule."""
    return DPMSolverMultistepScheduler(**{k: v for k, v in SDXL_SCHEDULE.items()
                                          if k not in ("clip_sample", "sample_max_value",
                                                       "set_alpha_to_one")})


def training_scheduler() -> DDPMScheduler:
    """DDPM on SDXL's noise schedule (adds noise during training)."""
    return DDPMScheduler(**{k: v for k, v in SDXL_SCHEDULE.items() if k != "set_alpha_to_one"})

