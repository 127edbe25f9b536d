"""Model presets: YAML files in this folder read into typed, validated dataclasses.

A preset is chosen, in order of precedence, by an explicit ``path`` (``--config FILE``), an
explicit ``preset`` name (``--preset tiny``), the ``COMIC_CONFIG`` / ``COMIC_PRESET``
environment variables, and finally the default ``sdxl``.

Every bad value raises :class:`ConfigError` with a one-line message naming the key and the file.

``limits.yaml`` is not a preset: :func:`load_limits` reads it into :class:`Limits`, the one table of
upper limits on user input that the app, the command lines and the loaders apply alike.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, get_args, get_origin, get_type_hints

import yaml

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_PRESET = "sdxl"
PRESET_ENV = "COMIC_PRESET"
CONFIG_ENV = "COMIC_CONFIG"


class ConfigError(ValueError):
    """A preset file is missing, unreadable or holds a bad value (one-line message)."""


#: Token widths of SDXL's two text encoders (CLIP ViT-L, OpenCLIP bigG): every SDXL checkpoint.
SDXL_TEXT_WIDTHS = (768, 1280)
#: The same for the tiny preset's random encoders.
TINY_TEXT_WIDTHS = (32, 64)


@dataclass(frozen=True)
class ModelConfig:
    """Where the diffusion model and the face-recognition ViT come from."""

    kind: Literal["hub", "tiny"] = "hub"
    pretrained: str = "stabilityai/stable-diffusion-xl-base-1.0"
    variant: str | None = "fp16"
    vae: str | None = "madebyollin/sdxl-vae-fp16-fix"
    fr_vit: str = "jayanta/vit-base-patch16-224-in21k-face-recognition"
    seed: int = 0
    base: str | None = None

    @property
    def single_file(self) -> bool:
        """True when ``base`` names a single-file ``.safetensors`` checkpoint (not a repository)."""
        return bool(self.base) and str(self.base).lower().endswith(".safetensors")

    @property
    def diffusers_repo(self) -> str:
        """The diffusers-layout repository loaded (``base`` when it names one), or, under a
        single-file ``base``, the one whose configs and tokenizers convert it (``pretrained``)."""
        return self.base if self.base and not self.single_file else self.pretrained

    @property
    def base_name(self) -> str:
        """What identities and projects record as the base model: ``base``, else ``pretrained``."""
        return self.base or self.pretrained

    @property
    def text_encoder_widths(self) -> tuple[int, int]:
        """(d1, d2): the widths an identity's ``clip_l`` and ``clip_g`` rows must have for this
        model, known without loading it ((768, 1280) for any SDXL checkpoint, (32, 64) tiny)."""
        return TINY_TEXT_WIDTHS if self.kind == "tiny" else SDXL_TEXT_WIDTHS


@dataclass(frozen=True)
class RuntimeConfig:
    """Device, precision, memory and speed switches (docs/PERFORMANCE.md).

    ``channels_last`` and ``compile`` act on the shared UNet (and channels-last on the VAE) once,
    when the components load; ``compile`` (``auto``: on for CUDA, off elsewhere; ``on``;
    ``off``; YAML true/false read as on/off) wraps in ``torch.compile`` the UNet's repeated blocks
    (``compile_scope: regional``, diffusers' regional compilation) or its whole call
    (``whole``), lazily: the first call of each input shape compiles; ``compile_mode`` is passed
    to it (:mod:`models.compilation`). ``memory_check``:
    before a hub preset loads, refuse in one line when its estimated memory need exceeds what the
    device has (:mod:`models.memory`).
    ``overlap_training``: training steps run beside panel drawing on one device instead of
    taking turns with it (peak memory: both activations at once; ignored with ``cpu_offload``;
    :mod:`core.concurrency`).
    """

    device: Literal["auto", "cuda", "cpu", "mps"] = "auto"
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    cpu_offload: bool = False
    vae_tiling: bool = False
    vae_slicing: bool = True
    attention: Literal["sdpa", "default"] = "sdpa"
    channels_last: bool = False
    compile: Literal["auto", "on", "off"] = "auto"
    compile_scope: Literal["regional", "whole"] = "regional"
    compile_mode: Literal["default", "reduce-overhead", "max-autotune",
                          "max-autotune-no-cudagraphs"] = "default"
    memory_check: bool = True
    overlap_training: bool = False


@dataclass(frozen=True)
class FaceConfig:
    """Face detection/alignment, parsing and recognition.

    Counting faces in a training photo (:func:`faces.photo_check.count_faces`): a detection counts
    when its score is at least ``min_detection_score`` (detector units; dlib HOG) and its box at
    least ``min_face_size`` pixels on its longer side.
    """

    detector: Literal["dlib", "retinaface"] = "dlib"
    parser: Literal["bisenet"] = "bisenet"
    recognizer: Literal["dlib", "insightface"] = "dlib"
    insightface_model: str = "buffalo_l"
    aligned_size: int = 512
    min_image_size: int = 64
    min_detection_score: float = 0.3
    min_face_size: int = 20


@dataclass(frozen=True)
class TrainConfig:
    """StableIdentity training hyperparameters (REFERENCE.md section 2) and speed switches.

    MLP (official ``StyleVectorizer``): ``mlp_hidden_factor`` hidden width in multiples of the
    token width (2: 2d), ``mlp_final_affine`` learnable affine of the final LayerNorm,
    ``mlp_init_std`` std of the stored ``EqualLinear`` weights (effective std ``mlp_init_std *
    lr_multiplier``). Augmentation: ``augment_crop_p`` / ``augment_paste_p`` probabilities of the
    3/4 crop and of the downscale-and-paste, ``augment_paste_aspect`` the width-aspect jitter
    (0.1: 0.9-1.1), ``resample`` bicubic (official) or antialiased bilinear with area-averaged masks.
    ``augment_pool``: distinct augmentations VAE-encoded per run, later steps reuse them (0: a
    fresh augmentation every step). ``gradient_checkpointing``: UNet activation checkpointing
    (less memory, one more UNet forward per step). ``mixed_precision``: ``auto`` autocasts the
    UNet pass to the components' dtype on CUDA; ``no`` runs it in the weights' dtype without
    autocast (as inference does); ``bf16``/``fp16`` autocast to that dtype on any device.
    ``mlp_dtype``: ``float32`` keeps the MLPs and their optimiser state in float32 whatever the
    UNet runs in; ``weights`` casts them to the UNet weights' dtype, as the official code does
    under mixed precision. ``celebrity_names``: the names whose statistics AdaIN uses,
    ``official`` (the official code's 326) or ``extended`` (this project's earlier 477).
    ``z0_weighting``: what the loss's z0 branch divides latents by, ``official`` (0.18215, the
    official SD2.1 code's relative weighting of the two branches) or ``vae`` (the VAE's own
    factor, 0.13025 on SDXL: the z0 branch weighs 1.96x more; :func:`stableidentity.loss.z0_divisor`).
    ``fast_step``: ``auto`` (on for CUDA), ``on`` or ``off``: each step as one static-buffer
    function, captured as a CUDA graph on CUDA (:mod:`stableidentity.fast_step`).
    """

    steps: int = 450
    learning_rate: float = 5e-5
    resolution: int = 512
    batch_size: int = 1
    alpha: float = 0.6
    hair_weight: float = 0.1
    mlp_depth: int = 2
    mlp_hidden_factor: int = 2
    mlp_final_affine: bool = True
    mlp_init_std: float = 0.02
    lr_multiplier: float = 0.1
    grad_clip: float = 1.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    weight_decay: float = 0.01
    adam_epsilon: float = 1e-8
    num_train_timesteps: int = 1000
    seed: int = 0
    augment_pool: int = 64
    augment_crop_p: float = 1.0
    augment_paste_p: float = 1.0
    augment_paste_aspect: float = 0.1
    resample: Literal["bicubic", "bilinear"] = "bicubic"
    gradient_checkpointing: bool = False
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    mlp_dtype: Literal["float32", "weights"] = "float32"
    celebrity_names: Literal["official", "extended"] = "official"
    z0_weighting: Literal["official", "vae"] = "official"
    fast_step: Literal["auto", "on", "off"] = "auto"


@dataclass(frozen=True)
class GenerationConfig:
    """Panel sampling defaults. ``prompt_cache_size``: encoded prompts kept per generator (0: off).

    Several people in one panel (docs/PANELS.md): ``regional_attention`` confines each
    character's signal words to its place in the UNet's cross-attention (panels with two or more
    characters); ``region_feather``: soft edge width of the places, in 0-1 units of the panel
    (each place ramps in from 0 at its inner edges to 1 at this distance inside them);
    ``character_prompts``: with regional attention, encode a prompt per character and a
    background prompt separately and blend them per region (no identity can leak through the
    causal text encoders); off: one shared prompt whose signal words are masked by a logit bias.
    ``face_pass`` redraws each detected face with its character's signal words (SDXL
    inpainting, same weights): crop ``face_pass_margin`` x the face size around it, upscale to
    ``face_pass_size`` pixels, denoise with ``face_pass_strength`` (0-1), paste back feathered.
    Only faces with a detector score >= ``face_pass_min_score`` and a box side >=
    ``face_pass_min_size`` pixels are redrawn, and, when matched by identity, only faces whose
    cosine similarity to their character is >= ``face_pass_min_similarity``; the others are left
    as drawn. ``face_pass_context``: the face prompt keeps the panel's sentence (other characters
    removed) after the close-up words. All faces of a panel are redrawn in one batched call.
    ``pdf_paper``: the paper of ``comic.pdf`` (each comic page scaled to fit one sheet).
    """

    sampler: Literal["dpm_multistep", "euler", "ddim"] = "dpm_multistep"
    steps: int = 30
    guidance_scale: float = 8.5
    width: int = 1024
    height: int = 1024
    candidates: int = 1
    max_identities_per_panel: int = 3
    negative_prompt: str = ""
    prompt_cache_size: int = 32
    regional_attention: bool = True
    region_feather: float = 0.05
    character_prompts: bool = True
    face_pass: bool = True
    face_pass_strength: float = 0.4
    face_pass_margin: float = 0.35
    face_pass_size: int = 768
    face_pass_min_score: float = 0.3
    face_pass_min_size: int = 24
    face_pass_min_similarity: float = 0.8
    face_pass_context: bool = True
    pdf_paper: Literal["A4", "Letter"] = "A4"


@dataclass(frozen=True)
class LLMConfig:
    """Story parsing with Gemini (the key comes from the environment only)."""

    model: str = "gemini-2.5-flash"
    timeout_s: float = 30.0


@dataclass(frozen=True)
class AppConfig:
    """One whole preset."""

    name: str
    model: ModelConfig = field(default_factory=ModelConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    face: FaceConfig = field(default_factory=FaceConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    library_dir: str = "embeddings"
    loras_dir: str = "loras"
    source: str = ""

    def replace(self, **changes: Any) -> "AppConfig":
        """Return a copy with top-level fields replaced (sections are frozen dataclasses)."""
        return dataclasses.replace(self, **changes)

    def with_base(self, base: str | None) -> "AppConfig":
        """A copy drawing with ``base`` (``--base``: a repository id or a single-file
        ``.safetensors``, made absolute); None keeps the preset's ``model.base``."""
        if not base:
            return self
        if base.lower().endswith(".safetensors"):
            base = str(Path(base).expanduser().resolve())
        return dataclasses.replace(self, model=dataclasses.replace(self.model, base=base))


_POSITIVE_INTS = {"steps", "resolution", "batch_size", "mlp_depth", "mlp_hidden_factor",
                  "num_train_timesteps", "width", "height", "candidates", "max_identities_per_panel",
                  "aligned_size", "min_image_size", "face_pass_size"}
_NON_NEGATIVE_INTS = {"augment_pool", "prompt_cache_size", "min_face_size", "face_pass_min_size"}
_POSITIVE_FLOATS = {"learning_rate", "lr_multiplier", "mlp_init_std", "grad_clip", "adam_epsilon",
                    "timeout_s"}
_UNIT_INTERVAL = {"alpha", "adam_beta1", "adam_beta2", "augment_crop_p", "augment_paste_p",
                  "augment_paste_aspect", "face_pass_strength", "region_feather"}
_NON_NEGATIVE = {"hair_weight", "weight_decay", "guidance_scale", "face_pass_margin"}


#: YAML files in ``configs/`` that are tables, not presets.
NOT_PRESETS = frozenset({"limits", "safety", "speeds", "styles"})


def available_presets() -> list[str]:
    """Names of the preset files shipped in ``configs/``."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")
                  if not p.stem.startswith("_") and p.stem not in NOT_PRESETS)


def preset_path(preset: str) -> Path:
    """Path of a shipped preset by name; ConfigError naming the choices if unknown."""
    known = available_presets()
    if preset not in known:  # checked before any path join: a name like '../x' never reaches disk
        shown = ascii(str(preset)[:80])[1:-1]
        raise ConfigError(f"unknown preset '{shown}' (choose from: {', '.join(known)})")
    return CONFIG_DIR / f"{preset}.yaml"


def load_config(preset: str | None = None, path: str | os.PathLike[str] | None = None) -> AppConfig:
    """Read and validate a preset.

    Args:
        preset: a shipped preset name ("sdxl", "tiny").
        path: a YAML file; wins over ``preset``.
    Falls back to ``$COMIC_CONFIG``, then ``$COMIC_PRESET``, then ``sdxl``.
    """
    if path is None and preset is None:
        path = os.environ.get(CONFIG_ENV) or None
        preset = os.environ.get(PRESET_ENV) or None
    file = Path(path) if path is not None else preset_path(preset or DEFAULT_PRESET)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read config file ({exc})") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise ConfigError(f"{file}: invalid YAML{where}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping of sections at the top level")
    raw.setdefault("name", file.stem)
    config = _build(AppConfig, raw, prefix="", file=file)
    return dataclasses.replace(config, source=str(file))


def _build(cls: type, raw: dict[str, Any], prefix: str, file: Path) -> Any:
    """Recursively build dataclass ``cls`` from ``raw``, checking names, types and ranges."""
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{file}: unknown key '{prefix}{unknown[0]}'")
    values: dict[str, Any] = {}
    for name in known:
        if name not in raw:
            continue
        key = f"{prefix}{name}"
        hint = hints[name]
        value = raw[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{file}: '{key}' must be a mapping")
            values[name] = _build(hint, value, prefix=f"{key}.", file=file)
        else:
            values[name] = _coerce(hint, value, key, file)
    return cls(**values)


def _coerce(hint: Any, value: Any, key: str, file: Path) -> Any:
    """Check one scalar against its type hint and the range rules; return it typed."""
    origin = get_origin(hint)
    args = get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        if isinstance(value, bool) and "on" in args and "off" in args:
            value = "on" if value else "off"  # YAML 1.1 reads unquoted on/off (and true/false) as booleans
        if value not in args:
            choices = ", ".join(str(a) for a in args)
            raise ConfigError(f"{file}: '{key}' is {value!r}; choose one of: {choices}")
        return value
    leaf = key.rsplit(".", 1)[-1]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{file}: '{key}' must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{file}: '{key}' must be a whole number, got {value!r}")
        if leaf in _POSITIVE_INTS and value <= 0:
            raise ConfigError(f"{file}: '{key}' must be positive, got {value}")
        if leaf in _NON_NEGATIVE_INTS and value < 0:
            raise ConfigError(f"{file}: '{key}' must not be negative, got {value}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{file}: '{key}' must be a number, got {value!r}")
        value = float(value)
        if leaf in _POSITIVE_FLOATS and not value > 0:
            raise ConfigError(f"{file}: '{key}' must be positive, got {value}")
        if leaf in _UNIT_INTERVAL and not 0.0 <= value <= 1.0:
            raise ConfigError(f"{file}: '{key}' must lie in [0, 1], got {value}")
        if leaf in _NON_NEGATIVE and value < 0:
            raise ConfigError(f"{file}: '{key}' must not be negative, got {value}")
        return value
    if hint is str:
        if not isinstance(value, str) or (leaf != "negative_prompt" and not value.strip()):
            raise ConfigError(f"{file}: '{key}' must be a non-empty string, got {value!r}")
        return value
    raise ConfigError(f"{file}: '{key}' has an unsupported type")  # pragma: no cover


# ----------------------------------------------------------------------------- limits

LIMITS_FILE = CONFIG_DIR / "limits.yaml"


@dataclass(frozen=True)
class Limits:
    """Upper limits on user input (``configs/limits.yaml``, where every key is documented).

    Byte sizes are bytes, lengths are characters, sizes are pixels. :meth:`refusal` words the
    one-line message every refusal uses, so the app, the CLIs and the loaders name limits alike.
    """

    upload_bytes: int
    photo_bytes: int
    photo_pixels: int
    photo_work_pixels: int
    zip_members: int
    zip_directory_bytes: int
    zip_read_bytes: int
    picture_bytes: int
    picture_pixels: int
    saved_pixels: int
    json_bytes: int
    json_depth: int
    json_number_chars: int
    identity_bytes: int
    story_bytes: int
    upload_max_age_s: int
    upload_sweep_s: int
    panels: int
    cast: int
    candidates: int
    steps: int
    train_steps: int
    size_multiple: int
    max_side: Mapping[str, int]
    guidance: float
    seed: int
    name_chars: int
    panel_text_chars: int
    title_chars: int
    prompt_chars: int
    keywords: int
    metadata_chars: int
    description_chars: int
    source: str = str(LIMITS_FILE)

    def side_limit(self, preset: str | None) -> int:
        """Largest panel width/height (pixels) for ``preset`` (``max_side.default`` if unlisted)."""
        return self.max_side.get(preset or "default", self.max_side["default"])

    def tag(self, key: str) -> str:
        """``"(limits.yaml: <key>)"``: how a message names a limit."""
        return f"({Path(self.source).name}: {key})"

    def refusal(self, what: str, key: str, limit: Any = None) -> str:
        """``"<what> is over the limit of <limit> (limits.yaml: <key>)"``; ``limit`` defaults to
        the value of ``key``."""
        value = getattr(self, key) if limit is None else limit
        shown = f"{value:,}" if isinstance(value, int) and value >= 10_000 else str(value)
        return f"{what} is over the limit of {shown} {self.tag(key)}"


@functools.lru_cache(maxsize=8)
def load_limits(path: str | os.PathLike[str] | None = None) -> Limits:
    """Read and check the limits table (default ``configs/limits.yaml``); cached per path.

    Raises:
        ConfigError: a missing or unknown key, or a value that is not a positive number.
    """
    file = Path(path) if path is not None else LIMITS_FILE
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{file}: cannot read the limits table ({type(exc).__name__})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping of limits")
    fields = {f.name: f for f in dataclasses.fields(Limits) if f.name != "source"}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{file}: unknown key '{unknown[0]}'")
    missing = sorted(set(fields) - set(raw))
    if missing:
        raise ConfigError(f"{file}: missing key '{missing[0]}'")
    hints = get_type_hints(Limits)
    values: dict[str, Any] = {}
    for name in fields:
        value = raw[name]
        if name == "max_side":
            if not isinstance(value, dict) or "default" not in value:
                raise ConfigError(f"{file}: 'max_side' must map preset names to pixels, with 'default'")
            values[name] = types.MappingProxyType(
                {str(k): _positive(v, f"max_side.{k}", file, int) for k, v in value.items()})
        else:
            values[name] = _positive(value, name, file, hints[name])
    return Limits(**values, source=str(file))


def _positive(value: Any, key: str, file: Path, kind: type) -> Any:
    """``value`` as a positive int (or finite positive float); ConfigError naming ``key``."""
    ok = not isinstance(value, bool) and isinstance(value, int if kind is int else (int, float))
    if not ok or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{file}: '{key}' must be a positive {'whole ' if kind is int else ''}"
                          f"number, got {value!r}")
    return kind(value)


__all__ = [
    "AppConfig", "ConfigError", "Limits", "load_limits", "FaceConfig", "GenerationConfig", "LLMConfig", "ModelConfig",
    "RuntimeConfig", "TrainConfig", "available_presets", "load_config", "preset_path",
]
