"""One model loader for every preset: SDXL parts, schedulers, FR-ViT, face parser and detector.

* ``kind: hub`` — each repository is resolved to a local snapshot in the Hugging Face cache
  (downloaded on first use; offline with nothing cached it fails at once with
  :class:`ModelUnavailable`, never a four-minute retry loop), then loaded with
  ``from_pretrained(local_dir)``.
* ``kind: tiny`` — the same classes from small configs with seeded random weights (see
  :mod:`pipelines.tiny`), built offline in about a second.

:func:`load_components` caches one :class:`Components` per preset for the process lifetime, so the
app never reloads SDXL per click.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from diffusers import (AutoencoderKL, DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler,
                       EulerDiscreteScheduler, UNet2DConditionModel)
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer, ViTModel

from configs import AppConfig, FaceConfig, ModelConfig, RuntimeConfig
from pipelines import tiny
from pipelines.clip_tokenizer import build_clip_tokenizer
from pipelines.files import cache_dir
from pipelines.network import host_reachable, hub_endpoint_reachable
from stableidentity.face_detection import DlibFaceDetector, FaceDetector, RetinaFaceDetector

FACEXLIB_URLS = {
    "bisenet": "https://github.com/xinntao/facexlib/releases/download/v0.2.0/parsing_bisenet.pth",
    "retinaface": "https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth",
}


class ModelUnavailable(RuntimeError):
    """Weights are neither cached nor downloadable; the message says what to do (one line)."""


@dataclass
class Components:
    """Every model a preset needs, on ``device`` in ``dtype`` (face models stay float32).

    ``scheduler`` samples panels; ``train_scheduler`` (DDPM) adds noise during training.
    """

    config: AppConfig
    device: torch.device
    dtype: torch.dtype
    tokenizer: CLIPTokenizer
    tokenizer_2: CLIPTokenizer
    text_encoder: CLIPTextModel
    text_encoder_2: CLIPTextModelWithProjection
    unet: UNet2DConditionModel
    vae: AutoencoderKL
    scheduler: SchedulerMixin
    train_scheduler: DDPMScheduler
    fr_vit: ViTModel
    face_parser: torch.nn.Module
    face_detector: FaceDetector

    def pipeline_parts(self) -> dict[str, Any]:
        """Keyword arguments for ``StableDiffusionXLPipeline(**parts)``."""
        return dict(vae=self.vae, text_encoder=self.text_encoder, text_encoder_2=self.text_encoder_2,
                    tokenizer=self.tokenizer, tokenizer_2=self.tokenizer_2, unet=self.unet,
                    scheduler=self.scheduler)


# ----------------------------------------------------------------------------- device and dtype

def resolve_device(runtime: RuntimeConfig) -> torch.device:
    """``auto`` -> cuda when available, else mps, else cpu; an unavailable choice is an error."""
    if runtime.device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if runtime.device == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailable("runtime.device is 'cuda' but no CUDA GPU is visible; use 'auto' or 'cpu'")
    return torch.device(runtime.device)


def resolve_dtype(runtime: RuntimeConfig, device: torch.device) -> torch.dtype:
    """``auto`` -> bfloat16 on CUDA GPUs that support it, float16 on other GPUs, float32 on CPU."""
    if runtime.dtype != "auto":
        return getattr(torch, runtime.dtype)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


# ----------------------------------------------------------------------------- hub resolution

def resolve_repo(repo: str, allow_patterns: list[str] | None = None) -> Path:
    """A local folder for ``repo``: itself if it is a directory, else its cached hub snapshot.

    Downloads when the hub is reachable; otherwise raises :class:`ModelUnavailable` at once.
    """
    if Path(repo).is_dir():
        return Path(repo)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo, allow_patterns=allow_patterns, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        pass
    if not hub_endpoint_reachable():
        raise ModelUnavailable(
            f"model '{repo}' is not in the Hugging Face cache and the hub cannot be reached "
            "(offline?); run once with network access to download it, or use --preset tiny")
    try:
        return Path(snapshot_download(repo, allow_patterns=allow_patterns))
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise ModelUnavailable(f"could not download model '{repo}': {str(exc).splitlines()[0]}") from None


def _sdxl_patterns(model: ModelConfig) -> list[str]:
    suffix = f".{model.variant}.safetensors" if model.variant else ".safetensors"
    patterns = ["model_index.json", "scheduler/*", "tokenizer/*", "tokenizer_2/*", "*/config.json",
                f"text_encoder/model{suffix}", f"text_encoder_2/model{suffix}",
                f"unet/diffusion_pytorch_model{suffix}"]
    if not model.vae:
        patterns.append(f"vae/diffusion_pytorch_model{suffix}")
    return patterns


def _variant_in(folder: Path, variant: str | None) -> str | None:
    """Use the configured variant only where its files exist (a local save has none)."""
    if variant and any(folder.glob(f"*.{variant}.safetensors")):
        return variant
    return None


# ----------------------------------------------------------------------------- speed switches

#: attribute holding the ``(mode, backend)`` a module was compiled with by :func:`set_compiled`
_COMPILED_WITH = "_comic_compiled_with"


def compiled_with(module: torch.nn.Module) -> tuple[str, str] | None:
    """``(mode, backend)`` when :func:`set_compiled` compiled ``module``, else None."""
    if getattr(module, "_compiled_call_impl", None) is None:
        return None
    return getattr(module, _COMPILED_WITH, None)


def set_compiled(module: torch.nn.Module, enabled: bool, mode: str = "default",
                 backend: str = "inductor") -> bool:
    """Compile ``module``'s call in place with ``torch.compile`` (or undo it); idempotent.

    ``nn.Module.compile`` keeps the module object, its parameters and attributes: pipelines,
    trainers and ``state_dict`` see the same module, only its ``__call__`` runs the compiled
    graph. Compilation itself is lazy: the first call with each new input shape (and grad mode)
    compiles, later calls reuse it. ``dynamic=False``: a panel (CFG batch 2N, 128x128 latents)
    and a training step (batch 1, 64x64, with autograd) each get a graph specialised to their
    shapes, as the benchmark measures. ``backend`` exists for tests (``"eager"`` traces with
    dynamo without Inductor's minute-long compile on a CPU). Returns whether anything changed.
    """
    current = compiled_with(module)
    wanted = (mode, backend) if enabled else None
    if current == wanted:
        return False
    if not enabled:
        module._compiled_call_impl = None  # nn.Module.compile's slot: calls run eagerly again
        setattr(module, _COMPILED_WITH, None)
        return True
    module.compile(mode=None if mode == "default" else mode, backend=backend, dynamic=False)
    setattr(module, _COMPILED_WITH, wanted)
    return True


def set_channels_last(module: torch.nn.Module, enabled: bool) -> bool:
    """Put ``module``'s 4-d weights in channels-last (NHWC) memory format, or back; idempotent.

    The parameters stay the same objects with the same values (only their strides change).
    Returns whether anything changed.
    """
    fmt = torch.channels_last if enabled else torch.contiguous_format
    weights = [p for p in module.parameters() if p.dim() == 4]
    if all(p.is_contiguous(memory_format=fmt) for p in weights):
        return False
    module.to(memory_format=fmt)
    return True


def set_attention(module: torch.nn.Module, attention: str) -> bool:
    """diffusers attention processors: ``sdpa`` -> ``AttnProcessor2_0``, ``default`` ->
    ``AttnProcessor``; set only where a module has others. Returns whether anything changed."""
    wanted = AttnProcessor2_0 if attention == "sdpa" else AttnProcessor
    if all(isinstance(p, wanted) for p in module.attn_processors.values()):
        return False
    module.set_attn_processor(wanted())
    return True


def apply_runtime_switches(unet: torch.nn.Module, vae: torch.nn.Module, runtime: RuntimeConfig) -> None:
    """Make the shared UNet and VAE follow ``runtime``: attention processors, channels-last
    (UNet and VAE) and ``torch.compile`` of the UNet (``runtime.compile_mode``).

    Called once when the components load (so training and generation both get them) and again,
    as a no-op, when a :class:`~pipelines.generation.PanelGenerator` is built. Each switch
    follows the config both ways (turning one off undoes it) and does nothing when the modules
    already match, so nothing is recompiled or copied twice. Never called per panel or per step.
    """
    set_attention(unet, runtime.attention)
    set_attention(vae, runtime.attention)
    set_channels_last(unet, runtime.channels_last)
    set_channels_last(vae, runtime.channels_last)
    set_compiled(unet, runtime.compile, runtime.compile_mode)


# ----------------------------------------------------------------------------- diffusion parts

def fix_pooled_eos(text_encoder: CLIPTextModel | CLIPTextModelWithProjection,
                   tokenizer: CLIPTokenizer) -> None:
    """Make pooling pick the end token, not ``argmax(input_ids)``.

    A CLIP text config with ``eos_token_id == 2`` (SDXL's hub configs) pools at the largest token
    id; once signal words are added (ids >= 49408) that is a signal word. Setting the real end id
    makes transformers pool at the first end token instead.
    """
    eos = tokenizer.eos_token_id
    text_encoder.config.eos_token_id = eos
    for module in text_encoder.modules():  # the text transformer keeps its own copy of the id
        if hasattr(module, "eos_token_id"):
            module.eos_token_id = eos


def make_sampler(name: str, base: SchedulerMixin) -> SchedulerMixin:
    """The sampling scheduler named in ``generation.sampler``, on ``base``'s noise schedule."""
    classes = {"dpm_multistep": DPMSolverMultistepScheduler, "euler": EulerDiscreteScheduler,
               "ddim": DDIMScheduler}
    return classes[name].from_config(base.config)


def _load_diffusion_tiny(config: AppConfig) -> dict[str, Any]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.model.seed)
        d1, d2 = config.model.text_encoder_widths
        text_encoder = tiny.tiny_text_encoder(hidden=d1)
        text_encoder_2 = tiny.tiny_text_encoder_2(hidden=d2, projection_dim=32)
        unet = tiny.tiny_unet(cross_attention_dim=d1 + d2, pooled_dim=32)
        vae = tiny.tiny_vae()
    return dict(tokenizer=build_clip_tokenizer(), tokenizer_2=build_clip_tokenizer(pad_token="!"),
                text_encoder=text_encoder, text_encoder_2=text_encoder_2, unet=unet, vae=vae,
                scheduler=tiny.sampling_scheduler(), train_scheduler=tiny.training_scheduler())


def load_diffusion_from_folder(folder: Path, dtype: torch.dtype, variant: str | None = None,
                               vae_folder: Path | None = None) -> dict[str, Any]:
    """Load the SDXL parts from a diffusers folder (a hub snapshot or a ``save_pretrained``)."""
    variant = _variant_in(folder / "unet", variant)
    weights = dict(variant=variant)
    tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer", local_files_only=True)
    tokenizer_2 = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer_2", local_files_only=True)
    text_encoder = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", dtype=dtype,
                                                 local_files_only=True, **weights)
    text_encoder_2 = CLIPTextModelWithProjection.from_pretrained(
        folder, subfolder="text_encoder_2", dtype=dtype, local_files_only=True, **weights)
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype,
                                                local_files_only=True, **weights)
    if vae_folder is not None:
        vae = AutoencoderKL.from_pretrained(vae_folder, torch_dtype=dtype, local_files_only=True)
    else:
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=dtype,
                                            local_files_only=True, **weights)
    base = DDPMScheduler.from_pretrained(folder, subfolder="scheduler", local_files_only=True)
    return dict(tokenizer=tokenizer, tokenizer_2=tokenizer_2, text_encoder=text_encoder,
                text_encoder_2=text_encoder_2, unet=unet, vae=vae, scheduler=base,
                train_scheduler=DDPMScheduler.from_config(base.config))


def _load_diffusion_hub(config: AppConfig, dtype: torch.dtype) -> dict[str, Any]:
    model = config.model
    folder = resolve_repo(model.pretrained, _sdxl_patterns(model))
    vae_folder = resolve_repo(model.vae, ["config.json", "diffusion_pytorch_model.safetensors"]) \
        if model.vae else None
    return load_diffusion_from_folder(folder, dtype, model.variant, vae_folder)


def load_diffusion(config: AppConfig, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """Tokenizers, text encoders, UNet, VAE and both schedulers, frozen, in eval mode, with the
    runtime's attention, channels-last and compile switches applied (:func:`apply_runtime_switches`)."""
    parts = _load_diffusion_tiny(config) if config.model.kind == "tiny" \
        else _load_diffusion_hub(config, dtype)
    parts["scheduler"] = make_sampler(config.generation.sampler, parts["scheduler"])
    fix_pooled_eos(parts["text_encoder"], parts["tokenizer"])
    fix_pooled_eos(parts["text_encoder_2"], parts["tokenizer_2"])
    for name in ("text_encoder", "text_encoder_2", "unet", "vae"):
        module = parts[name]
        # hub weights arrive in ``dtype`` already; casting them again would undo keep-in-fp32 rules
        needs_cast = config.model.kind == "tiny" and next(module.parameters()).dtype != dtype
        module = module.to(device=device, dtype=dtype) if needs_cast else module.to(device=device)
        module = module.eval()
        module.requires_grad_(False)
        parts[name] = module
    apply_runtime_switches(parts["unet"], parts["vae"], config.runtime)
    return parts


# ----------------------------------------------------------------------------- face models

def load_fr_vit(config: AppConfig, device: torch.device) -> ViTModel:
    """The frozen face-recognition ViT (plain ViTModel; CLS of the last hidden state is used)."""
    if config.model.kind == "tiny":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.model.seed + 1)
            vit = tiny.tiny_fr_vit()
    else:
        folder = resolve_repo(config.model.fr_vit, ["config.json", "*.safetensors", "*.bin"])
        vit = ViTModel.from_pretrained(folder, add_pooling_layer=False, local_files_only=True)
    vit = vit.to(device=device, dtype=torch.float32).eval()
    vit.requires_grad_(False)
    return vit


def facexlib_weights_dir() -> Path:
    """Where facexlib weights are cached (``$COMIC_CACHE/facexlib``)."""
    return cache_dir("facexlib")


def _facexlib_weights(name: str) -> Path:
    url = FACEXLIB_URLS[name]
    path = facexlib_weights_dir() / Path(urlparse(url).path).name
    if path.is_file():
        return path
    host = urlparse(url).hostname or "github.com"
    if not host_reachable(host):
        raise ModelUnavailable(f"facexlib {name} weights are not cached at {path} and {host} cannot "
                               "be reached (offline?); run once with network access, or use "
                               "--preset tiny")
    from facexlib.utils import load_file_from_url
    return Path(load_file_from_url(url, save_dir=str(path.parent)))


def load_face_parser(config: AppConfig, device: torch.device) -> torch.nn.Module:
    """facexlib's BiSeNet (19 CelebAMask-HQ classes): trained weights, or seeded random for tiny."""
    from facexlib.parsing.bisenet import BiSeNet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.model.seed + 2)
        parser = BiSeNet(num_class=19)
    if config.model.kind != "tiny":
        state = torch.load(_facexlib_weights("bisenet"), map_location="cpu", weights_only=True)
        parser.load_state_dict(state, strict=True)
    parser = parser.to(device=device, dtype=torch.float32).eval()
    parser.requires_grad_(False)
    return parser


def load_face_detector(face: FaceConfig, device: torch.device) -> FaceDetector:
    """The configured detector: dlib (offline, shipped in a wheel) or facexlib RetinaFace."""
    if face.detector == "dlib":
        return DlibFaceDetector()
    from facexlib.detection.retinaface import RetinaFace

    model = RetinaFace(network_name="resnet50", half=False, device=device)
    state = torch.load(_facexlib_weights("retinaface"), map_location="cpu", weights_only=True)
    model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)
    return RetinaFaceDetector(model.to(device).eval())


# ----------------------------------------------------------------------------- everything

def build_components(config: AppConfig) -> Components:
    """Load every component of ``config`` (uncached; see :func:`load_components`)."""
    device = resolve_device(config.runtime)
    dtype = resolve_dtype(config.runtime, device)
    parts = load_diffusion(config, device, dtype)
    return Components(config=config, device=device, dtype=dtype, **parts,
                      fr_vit=load_fr_vit(config, device),
                      face_parser=load_face_parser(config, device),
                      face_detector=load_face_detector(config.face, device))


@lru_cache(maxsize=2)
def load_components(config: AppConfig) -> Components:
    """:func:`build_components`, once per process per preset (the app shares it across sessions)."""
    return build_components(config)
