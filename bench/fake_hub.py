"""A local Hugging Face cache laid out exactly like the repositories the ``sdxl`` preset loads,
holding random weights in the real file formats, so the preset's own loader runs offline.

    python -m bench.fake_hub --hf-home DIR --comic-cache DIR [--full-size] [--no-weights] [--seed N]

then ``HF_HOME=DIR HF_HUB_OFFLINE=1 COMIC_CACHE=DIR python app.py --preset sdxl --check``.

What is written (the files the app downloads; every other file of the repositories is left out):

=============================================  ===============================================
repository / place                             files
=============================================  ===============================================
``stabilityai/stable-diffusion-xl-base-1.0``   ``model_index.json``, ``scheduler/scheduler_config.json``,
                                               ``tokenizer/`` and ``tokenizer_2/`` (``vocab.json``,
                                               ``merges.txt``, ``tokenizer_config.json``,
                                               ``special_tokens_map.json``), ``text_encoder/``,
                                               ``text_encoder_2/``, ``unet/`` and ``vae/`` each with
                                               ``config.json`` + the ``.fp16.safetensors`` variant file
``madebyollin/sdxl-vae-fp16-fix``              ``config.json``, ``diffusion_pytorch_model.safetensors`` (float32)
``jayanta/vit-base-patch16-224-in21k-face-     ``config.json`` (``ViTForImageClassification`` with its
recognition``                                  labels), ``preprocessor_config.json``, ``pytorch_model.bin``
                                               (``vit.*`` + the ``classifier.*`` head)
``$COMIC_CACHE/facexlib/parsing_bisenet.pth``  facexlib's BiSeNet state dict (19 classes; real size always)
=============================================  ===============================================

The cache has the hub's own structure (``hub/models--org--name/{blobs,refs/main,snapshots/<commit>}``,
snapshot entries are relative symlinks to content-addressed blobs), so ``snapshot_download(...,
local_files_only=True)`` resolves it like a real download. The tokenizers hold the real CLIP BPE
vocabulary (:mod:`models.clip_tokenizer`); tokenizer 2 pads with "!" as SDXL's does.

Sizes: by default the modules are the small ones of :mod:`models.tiny` (a few MB in all, written
in about 2 s; the loader reads every width from these configs). ``--full-size`` writes the real
SDXL architecture (:mod:`bench.arch`'s configs: UNet 2.57 B, encoders 123 M + 695 M, VAE 84 M
parameters, ViT-B/16), about 7 GB of disk, built one module at a time in float16 (peak RAM about
6 GB); it is for a manual run or the GPU check, never the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

SDXL_REPO = "stabilityai/stable-diffusion-xl-base-1.0"
VAE_REPO = "madebyollin/sdxl-vae-fp16-fix"
FR_VIT_REPO = "jayanta/vit-base-patch16-224-in21k-face-recognition"
BISENET_FILE = "parsing_bisenet.pth"
#: Labels of the fake FR-ViT classifier head (the real head's size does not matter to the app,
#: which drops it; the number here is illustrative).
FR_VIT_LABELS = 16

# stabilityai/stable-diffusion-xl-base-1.0, model_index.json
MODEL_INDEX: dict[str, Any] = {
    "_class_name": "StableDiffusionXLPipeline", "_diffusers_version": "0.19.0.dev0",
    "force_zeros_for_empty_prompt": True, "add_watermarker": None,
    "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
    "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
}
# scheduler/scheduler_config.json
SCHEDULER_CONFIG: dict[str, Any] = {
    "_class_name": "EulerDiscreteScheduler", "_diffusers_version": "0.19.0.dev0",
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
    "clip_sample": False, "interpolation_type": "linear", "num_train_timesteps": 1000,
    "prediction_type": "epsilon", "sample_max_value": 1.0, "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "timestep_spacing": "leading",
    "trained_betas": None, "use_karras_sigmas": False,
}
# preprocessor_config.json of the FR-ViT (mean = std = 0.5, 224 input)
VIT_PREPROCESSOR: dict[str, Any] = {
    "do_normalize": True, "do_rescale": True, "do_resize": True,
    "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
    "image_processor_type": "ViTImageProcessor", "resample": 2, "rescale_factor": 0.00392156862745098,
    "size": {"height": 224, "width": 224},
}


def _tokenizer_files(pad_token: str) -> dict[str, str]:
    """``tokenizer_config.json`` and ``special_tokens_map.json`` as SDXL's tokenizers have them."""
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
               "pad_token": pad_token, "unk_token": "<|endoftext|>"}
    config = {"add_prefix_space": False, "clean_up_tokenization_spaces": True, "do_lower_case": True,
              "errors": "replace", "model_max_length": 77, "tokenizer_class": "CLIPTokenizer", **special}
    return {"tokenizer_config.json": json.dumps(config, indent=2),
            "special_tokens_map.json": json.dumps(special, indent=2)}


# ----------------------------------------------------------------------------- the hub cache format

def repo_folder(hub_cache: Path, repo: str) -> Path:
    """``<hub cache>/models--org--name``, as huggingface_hub names a model repository's folder."""
    return hub_cache / ("models--" + repo.replace("/", "--"))


def _blob_name(path: Path) -> str:
    """The hub's blob name: sha256 for weight (LFS) files, the git blob sha1 for small files."""
    if path.suffix in (".safetensors", ".bin", ".pth"):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 24), b""):
                digest.update(chunk)
        return digest.hexdigest()
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def publish_snapshot(hub_cache: Path, repo: str, staged: Path) -> Path:
    """Move every file under ``staged`` into ``repo``'s blobs and link it from its snapshot.

    Returns the snapshot folder (``snapshots/<commit>``); ``refs/main`` names the commit.
    """
    root = repo_folder(hub_cache, repo)
    commit = hashlib.sha1(f"comic-identity fake snapshot of {repo}".encode()).hexdigest()
    snapshot = root / "snapshots" / commit
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    for file in sorted(p for p in staged.rglob("*") if p.is_file()):
        relative = file.relative_to(staged)
        blob = root / "blobs" / _blob_name(file)
        os.replace(file, blob)
        link = snapshot / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (root / "refs" / "main").write_text(commit)
    return snapshot


# ----------------------------------------------------------------------------- the modules

def _modules(full_size: bool) -> dict[str, Callable[[], torch.nn.Module]]:
    """Builders of the SDXL modules (small: :mod:`models.tiny`; full: :mod:`bench.arch`)."""
    from models import tiny

    if not full_size:
        return {"text_encoder": lambda: tiny.tiny_text_encoder(hidden=32),
                "text_encoder_2": lambda: tiny.tiny_text_encoder_2(hidden=64, projection_dim=32),
                "unet": lambda: tiny.tiny_unet(cross_attention_dim=32 + 64, pooled_dim=32),
                "vae": tiny.tiny_vae}
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from bench import arch

    return {"text_encoder": lambda: CLIPTextModel(CLIPTextConfig(**arch.SDXL_TEXT_ENCODER_CONFIG)),
            "text_encoder_2": lambda: CLIPTextModelWithProjection(
                CLIPTextConfig(**arch.SDXL_TEXT_ENCODER_2_CONFIG)),
            "unet": lambda: UNet2DConditionModel(**arch.SDXL_UNET_CONFIG),
            "vae": lambda: AutoencoderKL(**arch.SDXL_VAE_CONFIG)}


def _fr_vit_config(full_size: bool):
    from transformers import ViTConfig

    from bench import arch

    sizes = arch.FR_VIT_CONFIG if full_size else dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        image_size=224, patch_size=16, num_channels=3)
    labels = {i: f"person_{i:03d}" for i in range(FR_VIT_LABELS)}
    return ViTConfig(**sizes, id2label=labels, label2id={v: k for k, v in labels.items()},
                     architectures=["ViTForImageClassification"], qkv_bias=True)


def _save_module(module: torch.nn.Module, folder: Path, dtype: torch.dtype,
                 variant: str | None) -> None:
    """``save_pretrained`` (config.json + safetensors) of ``module`` in ``dtype``."""
    if next(module.parameters()).dtype != dtype:
        module = module.to(dtype)
    module.save_pretrained(folder, variant=variant, safe_serialization=True)


def _write_text(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


# ----------------------------------------------------------------------------- the repositories

def write_sdxl_repo(staged: Path, full_size: bool, weights: bool) -> None:
    """The base repository: index, scheduler, two tokenizers, four model folders (fp16 files)."""
    from bench.arch import default_dtype
    from models.clip_tokenizer import vocab_files

    _write_text(staged, {"model_index.json": json.dumps(MODEL_INDEX, indent=2)})
    _write_text(staged / "scheduler", {"scheduler_config.json": json.dumps(SCHEDULER_CONFIG, indent=2)})
    vocab, merges = vocab_files()
    for name, pad in (("tokenizer", "<|endoftext|>"), ("tokenizer_2", "!")):
        _write_text(staged / name, _tokenizer_files(pad))
        shutil.copyfile(vocab, staged / name / "vocab.json")
        shutil.copyfile(merges, staged / name / "merges.txt")
    for name, build in _modules(full_size).items():
        with default_dtype(torch.float16):  # built as stored: no float32 copy of 2.6 B parameters
            module = build()
        _save_module(module, staged / name, torch.float16, variant="fp16")
        del module
        if not weights:
            for file in (staged / name).glob("*.safetensors"):
                file.unlink()


def write_vae_repo(staged: Path, full_size: bool, weights: bool) -> None:
    """``madebyollin/sdxl-vae-fp16-fix``: config + float32 safetensors (no variant files)."""
    from bench.arch import default_dtype

    vae = _modules(full_size)["vae"]()
    _save_module(vae, staged, torch.float32, variant=None)
    if not weights:
        (staged / "diffusion_pytorch_model.safetensors").unlink()


def write_fr_vit_repo(staged: Path, full_size: bool, weights: bool) -> None:
    """The FR-ViT: a ViTForImageClassification checkpoint (``pytorch_model.bin``) + preprocessor."""
    from transformers import ViTForImageClassification

    config = _fr_vit_config(full_size)
    model = ViTForImageClassification(config)
    staged.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(staged)
    _write_text(staged, {"preprocessor_config.json": json.dumps(VIT_PREPROCESSOR, indent=2)})
    if weights:
        torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, staged / "pytorch_model.bin")


def write_face_parser(comic_cache: Path) -> Path:
    """facexlib's BiSeNet weights (random, real architecture) where the app caches them."""
    from facexlib.parsing.bisenet import BiSeNet

    path = comic_cache / "facexlib" / BISENET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(BiSeNet(num_class=19).state_dict(), path)
    return path


def write_fake_hub(hf_home: Path, comic_cache: Path, *, full_size: bool = False, weights: bool = True,
                   seed: int = 0) -> dict[str, Path]:
    """Write the cache; returns ``{repository or "face_parser": its snapshot folder or file}``.

    ``weights=False`` writes every config and tokenizer file but no weight file (a download stopped
    half-way). The face parser is left out where facexlib is not installed (a bare GPU image).
    The global RNG is left as it was.
    """
    hub_cache = Path(hf_home) / "hub"
    written: dict[str, Path] = {}
    writers = {SDXL_REPO: write_sdxl_repo, VAE_REPO: write_vae_repo, FR_VIT_REPO: write_fr_vit_repo}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for repo, writer in writers.items():
            hub_cache.mkdir(parents=True, exist_ok=True)
            staged = Path(tempfile.mkdtemp(prefix=".staging-", dir=hub_cache))
            try:
                writer(staged, full_size, weights)
                written[repo] = publish_snapshot(hub_cache, repo, staged)
            finally:
                shutil.rmtree(staged, ignore_errors=True)
        if weights and importlib.util.find_spec("facexlib") is not None:
            written["face_parser"] = write_face_parser(Path(comic_cache))
    return written


def environment(hf_home: Path, comic_cache: Path) -> dict[str, str]:
    """The environment variables that point the app at the fake cache, offline."""
    return {"HF_HOME": str(hf_home), "HF_HUB_CACHE": str(Path(hf_home) / "hub"),
            "HF_HUB_OFFLINE": "1", "COMIC_CACHE": str(comic_cache)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fake_hub", description=__doc__.split("\n\n")[0])
    parser.add_argument("--hf-home", type=Path, required=True, help="the HF_HOME to write (hub/ inside)")
    parser.add_argument("--comic-cache", type=Path, required=True, help="the COMIC_CACHE to write")
    parser.add_argument("--full-size", action="store_true",
                        help="real SDXL sizes (~7 GB of disk, ~6 GB of RAM while writing)")
    parser.add_argument("--no-weights", action="store_true",
                        help="configs and tokenizers only (an interrupted download)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    written = write_fake_hub(args.hf_home, args.comic_cache, full_size=args.full_size,
                             weights=not args.no_weights, seed=args.seed)
    for name, path in written.items():
        print(f"{name}: {path}")
    print(" ".join(f"{k}={v}" for k, v in environment(args.hf_home, args.comic_cache).items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
