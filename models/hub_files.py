"""The files each model needs, checked before a hub snapshot is trusted, fetched when missing.

A snapshot in the Hugging Face cache can hold a repository's configs without its weights (a first
download stopped half-way, or a cache filled by another tool). Loading such a snapshot fails deep
inside transformers with a 30-line traceback, so every component's files are listed first
(:func:`sdxl_needs`, :func:`vae_needs`, :func:`fr_vit_needs`) and :func:`ensure_files` checks them:

* all present and whole (a ``.safetensors`` file must be as long as its header says) -> the folder;
* some missing, hub reachable -> one line on stderr naming the repository, the files and their
  size, then huggingface_hub downloads them with its progress bars (an interrupted download resumes
  from its ``.incomplete`` blob on the next start) and the folder is checked again;
* some missing, offline -> :class:`ModelUnavailable` with one line naming the repository and the
  missing files.

A weight file that exists as a variant (``model.fp16.safetensors``) and plain (``model.safetensors``)
is one :class:`Need` with both choices; the variant is then decided per component folder from what
is there (:func:`variant_in`), never for every folder from the UNet's.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

from configs import ModelConfig
from core.network import hub_endpoint_reachable

#: the files CLIPTokenizer reads, with what stands in for them: SDXL's tokenizer folders hold
#: vocab.json + merges.txt (a transformers 5 ``save_pretrained`` writes tokenizer.json instead), and
#: special_tokens_map.json, fetched along as optional (tokenizer_config.json names the same tokens)
TOKENIZER_FILES = (("vocab.json", "tokenizer.json"), ("merges.txt", "tokenizer.json"),
                   ("tokenizer_config.json",))
#: (folder, weight file stem) of SDXL's model folders
SDXL_MODEL_FOLDERS = (("text_encoder", "model"), ("text_encoder_2", "model"),
                      ("unet", "diffusion_pytorch_model"), ("vae", "diffusion_pytorch_model"))


class ModelUnavailable(RuntimeError):
    """Weights are neither cached nor downloadable; the message says what to do (one line)."""


@dataclass(frozen=True)
class Need:
    """One file a model needs: the first of ``choices`` (repository-relative paths) that is
    present and whole satisfies it; ``choices[0]`` is the preferred one (e.g. the fp16 variant).
    An optional need is fetched along when the hub has it but never makes a folder incomplete."""

    choices: tuple[str, ...]
    required: bool = True

    @property
    def label(self) -> str:
        """How a missing need is named in messages."""
        return self.choices[0]


def weight_need(folder: str, stem: str, variant: str | None) -> Need:
    """``<folder>/<stem>.<variant>.safetensors``, else ``<folder>/<stem>.safetensors``."""
    prefix = f"{folder}/" if folder else ""
    names = ([f"{prefix}{stem}.{variant}.safetensors"] if variant else []) + [f"{prefix}{stem}.safetensors"]
    return Need(tuple(names))


def sdxl_needs(model: ModelConfig) -> list[Need]:
    """The SDXL base repository's files: index, scheduler, both tokenizers, and config + weights of
    each model folder (the ``vae/`` folder only when ``model.vae`` names no separate repository)."""
    needs = [Need(("model_index.json",)), Need(("scheduler/scheduler_config.json",))]
    for tokenizer in ("tokenizer", "tokenizer_2"):
        needs += [Need(tuple(f"{tokenizer}/{name}" for name in names)) for names in TOKENIZER_FILES]
        needs.append(Need((f"{tokenizer}/special_tokens_map.json",), required=False))
    for folder, stem in SDXL_MODEL_FOLDERS:
        if folder == "vae" and model.vae:
            continue
        needs += [Need((f"{folder}/config.json",)), weight_need(folder, stem, model.variant)]
    return needs


def sdxl_config_needs() -> list[Need]:
    """What a single-file checkpoint borrows from the SDXL repository: the index, the scheduler,
    both tokenizers and each model folder's ``config.json`` (no weights)."""
    needs = [Need(("model_index.json",)), Need(("scheduler/scheduler_config.json",))]
    for tokenizer in ("tokenizer", "tokenizer_2"):
        needs += [Need(tuple(f"{tokenizer}/{name}" for name in names)) for names in TOKENIZER_FILES]
        needs.append(Need((f"{tokenizer}/special_tokens_map.json",), required=False))
    needs += [Need((f"{folder}/config.json",)) for folder, _ in SDXL_MODEL_FOLDERS]
    return needs


def vae_needs() -> list[Need]:
    """A separate VAE repository (``madebyollin/sdxl-vae-fp16-fix``): config + safetensors."""
    return [Need(("config.json",)), weight_need("", "diffusion_pytorch_model", None)]


def fr_vit_needs() -> list[Need]:
    """The FR-ViT repository: config + weights (safetensors, or the PyTorch pickle it ships)."""
    return [Need(("config.json",)), Need(("model.safetensors", "pytorch_model.bin"))]


# ----------------------------------------------------------------------------- checking a folder

def file_is_whole(path: Path) -> bool:
    """True when ``path`` is a non-empty file; a ``.safetensors`` file must also hold a readable
    header and every byte its tensors need (a truncated copy fails)."""
    try:
        size = path.stat().st_size
    except OSError:
        return False
    if size == 0:
        return False
    if path.suffix != ".safetensors":
        return True
    try:
        with path.open("rb") as handle:
            (header_len,) = struct.unpack("<Q", handle.read(8))
            if header_len > min(size, 100 << 20):
                return False
            header = json.loads(handle.read(header_len))
    except (OSError, struct.error, ValueError):
        return False
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    return 8 + header_len + max(ends, default=0) <= size


def present(folder: Path, need: Need) -> str | None:
    """The first choice of ``need`` that is whole in ``folder``, else None."""
    return next((c for c in need.choices if file_is_whole(folder / c)), None)


def missing_files(folder: Path | None, needs: Sequence[Need]) -> list[Need]:
    """The required needs of ``needs`` that ``folder`` does not satisfy (all when it is None)."""
    required = [need for need in needs if need.required]
    if folder is None:
        return required
    return [need for need in required if present(folder, need) is None]


def variant_in(folder: Path, variant: str | None) -> str | None:
    """``variant`` when ``folder`` (one component folder) holds its weight file, else None."""
    if variant and any(file_is_whole(p) for p in folder.glob(f"*.{variant}.safetensors")):
        return variant
    return None


def weight_files(folder: Path, needs: Sequence[Need]) -> list[Path]:
    """The weight files (safetensors / bin) that satisfy ``needs`` in ``folder``."""
    found = (present(folder, need) for need in needs)
    return [folder / name for name in found if name and name.endswith((".safetensors", ".bin"))]


# ----------------------------------------------------------------------------- the hub

class HubClient(Protocol):
    """What :func:`ensure_files` needs from the hub (tests give a local stand-in)."""

    def local_snapshot(self, repo: str) -> Path | None:
        """The cached snapshot folder of ``repo``'s main revision, or None."""

    def remote_files(self, repo: str) -> dict[str, int | None]:
        """Every file of ``repo`` on the hub with its size in bytes."""

    def download(self, repo: str, files: Sequence[str], force: Sequence[str]) -> Path:
        """Fetch ``files`` (re-fetching ``force`` even if cached) into the cache, resuming partial
        downloads; return the snapshot folder."""


def hub_cache_dir() -> Path:
    """The hub cache, read from the environment at call time (``HF_HUB_CACHE``, else
    ``$HF_HOME/hub``, else huggingface_hub's default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


class HuggingFaceHub:
    """:class:`HubClient` on huggingface_hub, in the cache of :func:`hub_cache_dir`."""

    def local_snapshot(self, repo: str) -> Path | None:
        """``snapshots/<commit of refs/main>``, read directly: huggingface_hub's own offline
        lookup refuses a partial snapshot outright, and here the missing files are to be named.
        Without a ref, the most recent snapshot folder."""
        root = hub_cache_dir() / ("models--" + repo.replace("/", "--"))
        try:
            commit = (root / "refs" / "main").read_text().strip()
        except OSError:
            commit = ""
        if commit and (root / "snapshots" / commit).is_dir():
            return root / "snapshots" / commit
        snapshots = [p for p in (root / "snapshots").glob("*") if p.is_dir()]
        return max(snapshots, key=lambda p: p.stat().st_mtime) if snapshots else None

    def remote_files(self, repo: str) -> dict[str, int | None]:
        from huggingface_hub import HfApi

        info = HfApi().model_info(repo, files_metadata=True)
        return {s.rfilename: s.size for s in info.siblings or []}

    def download(self, repo: str, files: Sequence[str], force: Sequence[str]) -> Path:
        from huggingface_hub import hf_hub_download, snapshot_download

        for name in force:
            hf_hub_download(repo, name, cache_dir=hub_cache_dir(), force_download=True)
        return Path(snapshot_download(repo, allow_patterns=list(files), cache_dir=hub_cache_dir()))


def _size_text(size: float) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e8 else f"{size / 1e6:.1f} MB"


def _names(needs: Sequence[Need], limit: int = 6) -> str:
    names = [n.label for n in needs]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def ensure_files(repo: str, needs: Sequence[Need], hub: HubClient | None = None) -> Path:
    """A local folder holding every file of ``needs`` for ``repo`` (a folder path or a hub id).

    Raises :class:`ModelUnavailable` (one line naming the repository and the missing files) when
    a local folder lacks files, or when the cache lacks them and the hub cannot be reached.
    """
    if Path(repo).is_dir():
        gaps = missing_files(Path(repo), needs)
        if gaps:
            raise ModelUnavailable(f"the model folder '{repo}' lacks {_names(gaps)}")
        return Path(repo)
    hub = hub or HuggingFaceHub()
    folder = hub.local_snapshot(repo)
    gaps = missing_files(folder, needs)
    if not gaps:
        return folder  # type: ignore[return-value]
    if not hub_endpoint_reachable():
        if folder is None:
            raise ModelUnavailable(
                f"model '{repo}' is not in the Hugging Face cache and the hub cannot be reached "
                "(offline?); run once with network access to download it, or use --preset tiny")
        raise ModelUnavailable(
            f"model '{repo}' is incomplete in the Hugging Face cache (missing {_names(gaps)}) and "
            "the hub cannot be reached (offline?); run once with network access to finish the "
            "download, or use --preset tiny")
    return _fetch(repo, needs, gaps, folder, hub)


def _fetch(repo: str, needs: Sequence[Need], gaps: Sequence[Need], folder: Path | None,
           hub: HubClient) -> Path:
    """Download what ``gaps`` lacks (announced on stderr), then check ``needs`` again."""
    try:
        remote = hub.remote_files(repo)
        files, todo = [], []
        for need in needs:
            local = present(folder, need) if folder is not None else None
            pick = local or next((c for c in need.choices if c in remote), None)
            if pick is None and not need.required:
                continue
            if pick is None:
                raise ModelUnavailable(f"model '{repo}' on the hub has no {' or '.join(need.choices)}")
            files.append(pick)
            if local is None:
                todo.append(pick)
        force = [name for name in todo if folder is not None and (folder / name).exists()]
        size = sum(remote.get(name) or 0 for name in todo)
        print(f"downloading {repo}: {len(todo)} file(s), {_size_text(size)} into {hub_cache_dir()} "
              "(an interrupted download resumes on the next start)", file=sys.stderr, flush=True)
        folder = hub.download(repo, files, force)
    except ModelUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - network and hub errors become one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelUnavailable(f"could not download model '{repo}': {first}") from None
    gaps = missing_files(folder, needs)
    if gaps:
        raise ModelUnavailable(f"model '{repo}' is still incomplete after downloading (missing "
                               f"{_names(gaps)}); run again to resume, or use --preset tiny")
    return folder
