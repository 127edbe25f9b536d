"""One model loader for every preset: SDXL parts, schedulers, FR-ViT, face parser and detector.

* ``kind: hub`` — each repository is resolved to a local snapshot in the Hugging Face cache whose
  files are checked first (:mod:`models.hub_files`: every component's config and weight file,
  the tokenizers; missing ones are downloaded with progress, or named in one line offline), the
  memory the preset needs is compared with what the machine has (:mod:`models.memory`), then
  each part is loaded with ``from_pretrained(local_dir)``, the fp16 variant chosen per folder.
* ``kind: tiny`` — the same classes from small configs with seeded random weights (see
  :mod:`models.tiny`), built offline in about a second.
* ``model.base`` naming a single-file ``.safetensors`` (either kind) — the file's header is
  checked, its parameters counted for the memory check, and diffusers' ``from_single_file``
  converts it with the diffusers configs of ``model.pretrained`` (hub: configs and tokenizers of
  the cached snapshot; tiny: written from the tiny components), offline (:mod:`models.single_file`).
  A ``base`` naming a repository is loaded like ``pretrained``.

:func:`load_components` caches one :class:`Components` per preset for the process lifetime, so the
app never reloads SDXL per click.
"""

from __future__ import annotations

import sys
import tempfile
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
from models import tiny
from models.clip_tokenizer import build_clip_tokenizer
from models import memory
from models.compilation import repeated_blocks, resolve_compile, use_compile_cache
from core.files import cache_dir
from models.hub_files import (ModelUnavailable, ensure_files, fr_vit_needs, sdxl_config_needs,
                              sdxl_needs, vae_needs, variant_in, weight_files)
from models import single_file
from models.fingerprint import EncoderFingerprint, fingerprint_of
from core.network import host_reachable
from core.concurrency import DeviceGate
from faces.face_detection import DlibFaceDetector, FaceDetector, RetinaFaceDetector

FACEXLIB_URLS = {
    "bisenet": "https://github.com/xinntao/facexlib/releases/download/v0.2.0/parsing_bisenet.pth",
    "retinaface": "https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth",
}


__all__ = ["Components", "HubSources", "ModelUnavailable", "build_components", "load_components"]


@dataclass
class Components:
    """Every model a preset needs, on ``device`` in ``dtype`` (face models stay float32).

    ``scheduler`` samples panels; ``train_scheduler`` (DDPM) adds noise during training.
    ``gate`` serialises model work on ``device`` (:mod:`core.concurrency`): panels and
    training steps hold it; ``dataclasses.replace`` keeps it, so copies sharing these modules
    share their gate. The face detector locks itself. ``fingerprint``: the text encoders' token
    tables (:mod:`models.fingerprint`), computed when not given (None for weights on the meta
    device); identities record it.
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
    gate: DeviceGate | None = None
    fingerprint: EncoderFingerprint | None = None

    def __post_init__(self) -> None:
        if self.gate is None:
            self.gate = DeviceGate(device=str(self.device))
        if self.fingerprint is None and not self.text_encoder.get_input_embeddings().weight.is_meta:
            # (weights on the meta device, as the benchmarks' shape-only models: nothing to read)
            self.fingerprint = fingerprint_of(self.text_encoder, self.text_encoder_2)

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


@lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """True when this CPU computes bfloat16 natively and correctly.

    oneDNN's own test (AVX512-BF16 / AVX512 core / AMX on x86, the bf16 extension on ARM) decides
    whether bf16 runs at full speed (elsewhere PyTorch emulates it, several times slower than
    float32); a tiny matmul then has to agree with float32.
    """
    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
    if not native:
        return False
    a = torch.arange(16, dtype=torch.float32).reshape(4, 4) / 8
    try:
        probe = (a.bfloat16() @ a.bfloat16()).float()
    except RuntimeError:
        return False
    return bool(torch.allclose(probe, a @ a, rtol=2e-2, atol=1e-2))


def resolve_dtype(runtime: RuntimeConfig, device: torch.device) -> torch.dtype:
    """``auto`` -> bfloat16 on CUDA GPUs that support it, float16 on other GPUs; on the CPU
    bfloat16 where it runs natively (:func:`cpu_supports_bf16`: half the memory of float32, and
    faster), float32 elsewhere. An explicit ``runtime.dtype`` is used as given."""
    if runtime.dtype != "auto":
        return getattr(torch, runtime.dtype)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.bfloat16 if cpu_supports_bf16() else torch.float32


# ----------------------------------------------------------------------------- hub sources

@dataclass(frozen=True)
class HubSources:
    """Local folders (checked complete) holding every file a ``kind: hub`` preset loads."""

    diffusion: Path
    vae: Path | None
    fr_vit: Path
    face_parser: Path | None
    checkpoint: Path | None = None  # a single-file base; ``diffusion`` then holds configs only


def resolve_sources(config: AppConfig, face_parser: bool = True) -> HubSources:
    """Check (and, with network, complete) every repository of ``config`` before anything loads
    (the face parser's weights too, unless ``face_parser`` is False)."""
    model = config.model
    checkpoint = None
    if model.single_file:
        checkpoint = Path(model.base)
        single_file.check_single_file(checkpoint)
        diffusion = ensure_files(model.diffusers_repo, sdxl_config_needs())
    else:
        diffusion = ensure_files(model.diffusers_repo, sdxl_needs(model))
    vae = ensure_files(model.vae, vae_needs()) if model.vae else None
    fr_vit = ensure_files(model.fr_vit, fr_vit_needs())
    return HubSources(diffusion=diffusion, vae=vae, fr_vit=fr_vit, checkpoint=checkpoint,
                      face_parser=_facexlib_weights("bisenet") if face_parser else None)


def component_sizes(config: AppConfig, sources: HubSources) -> memory.Sizes:
    """Parameter counts of the weight files in ``sources`` (headers only, nothing loaded)."""
    if sources.checkpoint is not None:
        diffusion, unet, _ = single_file.single_file_sizes(sources.checkpoint)
    else:
        diffusion = memory.count(weight_files(sources.diffusion, sdxl_needs(config.model)))
        unet = memory.count(p for p in weight_files(sources.diffusion, sdxl_needs(config.model))
                            if p.parent.name == "unet")
    if sources.vae is not None:
        diffusion += memory.count(weight_files(sources.vae, vae_needs()))
    float32 = memory.count(weight_files(sources.fr_vit, fr_vit_needs()))
    if sources.face_parser is not None:
        float32 += memory.file_numel(sources.face_parser)
    return memory.Sizes(diffusion=diffusion, float32=float32, unet=unet)


def check_memory(config: AppConfig, sources: HubSources, device: torch.device,
                 dtype: torch.dtype) -> memory.MemoryNeed | None:
    """Refuse (:class:`models.memory.InsufficientMemory`, one line) before loading a preset
    that will not fit; None when ``runtime.memory_check`` is off."""
    if not config.runtime.memory_check:
        return None
    gen = config.generation
    return memory.check_fits(
        config.name, component_sizes(config, sources), dtype, device,
        train_resolution=config.train.resolution, draw_pixels=gen.width * gen.height,
        cpu_offload=config.runtime.cpu_offload, available=memory.available_bytes(device))


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


def set_regional_compiled(unet: torch.nn.Module, enabled: bool, mode: str = "default") -> bool:
    """Compile (or undo) each of the UNet's repeated blocks in place with :func:`set_compiled`
    (diffusers' regional compilation, :func:`models.compilation.repeated_blocks`); idempotent.
    Returns whether anything changed."""
    changed = False
    for _, block in repeated_blocks(unet):
        changed |= set_compiled(block, enabled, mode)
    return changed


def apply_runtime_switches(unet: torch.nn.Module, vae: torch.nn.Module, runtime: RuntimeConfig,
                           device: torch.device | None = None) -> None:
    """Make the shared UNet and VAE follow ``runtime``: attention processors, channels-last
    (UNet and VAE) and ``torch.compile`` of the UNet (``runtime.compile`` resolved for ``device``,
    default the UNet's: :func:`models.compilation.resolve_compile`; ``runtime.compile_scope``
    regional blocks or the whole UNet; ``runtime.compile_mode``).

    Called once when the components load (so training and generation both get them) and again,
    as a no-op, when a :class:`~pipelines.generation.PanelGenerator` is built. Each switch
    follows the config both ways (turning one off undoes it) and does nothing when the modules
    already match, so nothing is recompiled or copied twice. Never called per panel or per step.
    When compiling, Inductor's caches are pointed into the app's cache folder
    (:func:`models.compilation.use_compile_cache`).
    """
    set_attention(unet, runtime.attention)
    set_attention(vae, runtime.attention)
    set_channels_last(unet, runtime.channels_last)
    set_channels_last(vae, runtime.channels_last)
    enabled = resolve_compile(runtime.compile, device if device is not None else unet.device)
    regional = runtime.compile_scope == "regional"
    if enabled:
        use_compile_cache()
    set_compiled(unet, enabled and not regional, runtime.compile_mode)
    if getattr(unet, "_repeated_blocks", None):
        set_regional_compiled(unet, enabled and regional, runtime.compile_mode)
    elif enabled and regional:
        raise ValueError(f"runtime.compile_scope: regional needs a model with repeated blocks, "
                         f"{type(unet).__name__} has none; use compile_scope: whole")


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


def _load_tiny_single_file(config: AppConfig, tiny_parts: dict[str, Any],
                           dtype: torch.dtype) -> dict[str, Any]:
    """The tiny preset with a single-file ``model.base``: the file's weights in the tiny
    architecture, converted with the tiny components' configs (written to a private temporary
    folder, so concurrent processes never read each other's half-written configs)."""
    if not config.model.single_file:
        raise ModelUnavailable(f"the tiny preset takes a single-file .safetensors as its base, not "
                               f"'{config.model.base}'")
    with tempfile.TemporaryDirectory(prefix="tiny-sdxl-config-") as tmp:
        folder = single_file.write_tiny_configs(tiny_parts, Path(tmp))
        parts = single_file.load_single_file(Path(config.model.base), folder, dtype)
    parts["scheduler"], parts["train_scheduler"] = tiny_parts["scheduler"], tiny_parts["train_scheduler"]
    return parts


def load_diffusion_from_folder(folder: Path, dtype: torch.dtype, variant: str | None = None,
                               vae_folder: Path | None = None) -> dict[str, Any]:
    """Load the SDXL parts from a diffusers folder (a hub snapshot or a ``save_pretrained``).

    ``variant`` (e.g. "fp16") is used in each component folder that holds its weight file; a
    folder without it loads its plain weights (decided per folder, :func:`variant_in`).
    """
    def weights(sub: str) -> dict[str, Any]:
        return dict(variant=variant_in(folder / sub, variant), local_files_only=True)

    tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer", local_files_only=True)
    tokenizer_2 = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer_2", local_files_only=True)
    text_encoder = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", dtype=dtype,
                                                 **weights("text_encoder"))
    text_encoder_2 = CLIPTextModelWithProjection.from_pretrained(
        folder, subfolder="text_encoder_2", dtype=dtype, **weights("text_encoder_2"))
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype,
                                                **weights("unet"))
    if vae_folder is not None:
        vae = AutoencoderKL.from_pretrained(vae_folder, torch_dtype=dtype, local_files_only=True)
    else:
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=dtype, **weights("vae"))
    base = DDPMScheduler.from_pretrained(folder, subfolder="scheduler", local_files_only=True)
    return dict(tokenizer=tokenizer, tokenizer_2=tokenizer_2, text_encoder=text_encoder,
                text_encoder_2=text_encoder_2, unet=unet, vae=vae, scheduler=base,
                train_scheduler=DDPMScheduler.from_config(base.config))


def load_diffusion(config: AppConfig, device: torch.device, dtype: torch.dtype,
                   sources: HubSources | None = None) -> dict[str, Any]:
    """Tokenizers, text encoders, UNet, VAE and both schedulers, frozen, in eval mode, with the
    runtime's attention, channels-last and compile switches applied (:func:`apply_runtime_switches`).
    ``sources``: the checked folders of a hub preset (resolved here when None)."""
    if config.model.kind == "tiny":
        parts = _load_diffusion_tiny(config)
        if config.model.base:
            parts = _load_tiny_single_file(config, parts, dtype)
    else:
        sources = sources or resolve_sources(config)
        if sources.checkpoint is not None:
            vae = (AutoencoderKL.from_pretrained(sources.vae, torch_dtype=dtype, local_files_only=True)
                   if sources.vae is not None else None)
            parts = single_file.load_single_file(sources.checkpoint, sources.diffusion, dtype, vae)
        else:
            parts = load_diffusion_from_folder(sources.diffusion, dtype, config.model.variant, sources.vae)
    parts["scheduler"] = make_sampler(config.generation.sampler, parts["scheduler"])
    fix_pooled_eos(parts["text_encoder"], parts["tokenizer"])
    fix_pooled_eos(parts["text_encoder_2"], parts["tokenizer_2"])
    for name in ("text_encoder", "text_encoder_2", "unet", "vae"):
        module = parts[name]
        # hub weights arrive in ``dtype`` already; casting them again would undo keep-in-fp32 rules
        needs_cast = (config.model.kind == "tiny" and not config.model.base
                      and next(module.parameters()).dtype != dtype)
        module = module.to(device=device, dtype=dtype) if needs_cast else module.to(device=device)
        module = module.eval()
        module.requires_grad_(False)
        parts[name] = module
    apply_runtime_switches(parts["unet"], parts["vae"], config.runtime, device)
    return parts


# ----------------------------------------------------------------------------- face models

class FaceRecognitionViT(ViTModel):
    """A plain :class:`ViTModel` that loads a ``ViTForImageClassification`` checkpoint (the FR-ViT
    ships one) and drops its ``classifier.*`` head silently: the head is not used, so it is no
    "unexpected key" worth transformers' LOAD REPORT."""

    _keys_to_ignore_on_load_unexpected = [r"(^|\.)classifier\."]


def load_fr_vit(config: AppConfig, device: torch.device, sources: HubSources | None = None) -> ViTModel:
    """The frozen face-recognition ViT (plain ViTModel; CLS of the last hidden state is used)."""
    if config.model.kind == "tiny":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.model.seed + 1)
            vit = tiny.tiny_fr_vit()
    else:
        folder = sources.fr_vit if sources else ensure_files(config.model.fr_vit, fr_vit_needs())
        vit = FaceRecognitionViT.from_pretrained(folder, add_pooling_layer=False, local_files_only=True)
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

    print(f"downloading facexlib {name} weights from {host} into {path.parent}", file=sys.stderr,
          flush=True)
    return Path(load_file_from_url(url, save_dir=str(path.parent), progress=True))


def load_face_parser(config: AppConfig, device: torch.device,
                     sources: HubSources | None = None) -> torch.nn.Module:
    """facexlib's BiSeNet (19 CelebAMask-HQ classes): trained weights, or seeded random for tiny."""
    from facexlib.parsing.bisenet import BiSeNet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.model.seed + 2)
        parser = BiSeNet(num_class=19)
    if config.model.kind != "tiny":
        path = sources.face_parser if sources and sources.face_parser else _facexlib_weights("bisenet")
        state = torch.load(path, map_location="cpu", weights_only=True)
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

def build_components(config: AppConfig, face_models: bool = True) -> Components:
    """Load every component of ``config`` (uncached; see :func:`load_components`).

    A hub preset's files are checked (and completed) first, then its memory need is compared with
    what the device has; either failure raises :class:`ModelUnavailable` with one line.
    ``face_models=False`` leaves the face parser and detector out (None): only for benchmarks
    that never detect or parse a face, on machines without facexlib or dlib.
    """
    device = resolve_device(config.runtime)
    dtype = resolve_dtype(config.runtime, device)
    sources = None
    if config.model.kind != "tiny":
        sources = resolve_sources(config, face_parser=face_models)
        check_memory(config, sources, device, dtype)
        print(f"loading the '{config.name}' models on {device.type} in "
              f"{str(dtype).removeprefix('torch.')}", file=sys.stderr, flush=True)
    parts = load_diffusion(config, device, dtype, sources)
    return Components(config=config, device=device, dtype=dtype, **parts,
                      fr_vit=load_fr_vit(config, device, sources),
                      face_parser=load_face_parser(config, device, sources) if face_models else None,
                      face_detector=load_face_detector(config.face, device) if face_models else None)


@lru_cache(maxsize=2)
def load_components(config: AppConfig) -> Components:
    """:func:`build_components`, once per process per preset (the app shares it across sessions)."""
    return build_components(config)
