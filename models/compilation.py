"""``runtime.compile``: when to compile, what (regional), and where the compiled code is kept.

* **When** (:func:`resolve_compile`): ``auto`` compiles on CUDA and not on a CPU (Inductor takes
  minutes there for little gain) nor on a ZeroGPU Space (docs/APP.md says why); ``on`` / ``off`` force it. YAML's unquoted ``true``/``false``
  (and ``on``/``off``) read as ``on``/``off``, so older presets keep working.
* **What** (``runtime.compile_scope``): ``regional`` (default) compiles only the UNet's repeated
  blocks, the ones diffusers lists in ``UNet2DConditionModel._repeated_blocks``
  (``BasicTransformerBlock``: the attention blocks that hold most of a 1024² panel's work), each
  in place (:func:`repeated_blocks`); the blocks share code, so Inductor compiles a handful of
  graphs (one per width and token count) instead of the whole UNet: seconds of warm-up instead
  of the 116 s a whole-UNet compile took on the H200 (docs/PERFORMANCE.md). ``whole`` compiles
  the UNet's call as before.
* **Where** (:func:`use_compile_cache`): Inductor's and Triton's on-disk caches go to the app's
  cache folder (``$COMIC_CACHE/compile``, :func:`core.files.cache_dir`), and after the start-up
  warm-up the compiled artefacts are also saved as one file there
  (``torch.compiler.save_cache_artifacts``, :func:`save_compile_artifacts`) and loaded back before
  the next warm-up (:func:`load_compile_artifacts`), so a restarted server reuses them instead of
  compiling again. A user's own ``TORCHINDUCTOR_CACHE_DIR`` / ``TRITON_CACHE_DIR`` win.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path

import torch

from core.files import cache_dir, write_bytes_atomic

logger = logging.getLogger(__name__)

#: Sub-folder of the app's cache that holds compiled code.
COMPILE_CACHE = "compile"
#: File of the saved compile artefacts (``torch.compiler.save_cache_artifacts``) in that folder.
ARTIFACTS_FILE = "artifacts.bin"


#: The variable ZeroGPU Spaces set (as ``serving.zero_gpu.ZERO_GPU_ENV``; read here, a floor below).
ZERO_GPU_ENV = "SPACES_ZERO_GPU"


def resolve_compile(choice: str | bool, device: torch.device | str,
                    environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``runtime.compile`` compiles on ``device``: ``auto`` -> CUDA only, and not on a
    ZeroGPU Space (each request's short-lived GPU worker would compile again: docs/APP.md);
    ``on``/``off`` (or True/False) as said. Raises ValueError (one line) on anything else."""
    if isinstance(choice, bool):
        return choice
    if choice == "auto":
        zero_gpu = (os.environ if environ is None else environ).get(ZERO_GPU_ENV, "").strip().lower()
        return torch.device(device).type == "cuda" and zero_gpu not in ("1", "t", "true")
    if choice in ("on", "off"):
        return choice == "on"
    raise ValueError(f"runtime.compile must be auto, on or off, got {choice!r}")


def repeated_blocks(unet: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """``(qualified name, module)`` of the blocks regional compilation compiles: every module
    whose class is named in the model's ``_repeated_blocks`` (diffusers' regional compilation).
    Raises ValueError when the model lists none or none is found."""
    names = tuple(getattr(unet, "_repeated_blocks", None) or ())
    if not names:
        raise ValueError(f"{type(unet).__name__} lists no repeated blocks for regional compilation")
    blocks = [(name, module) for name, module in unet.named_modules() if type(module).__name__ in names]
    if not blocks:
        raise ValueError(f"no {', '.join(names)} in {type(unet).__name__} for regional compilation")
    return blocks


def compile_cache_folder() -> Path:
    """``$COMIC_CACHE/compile`` (or ``~/.cache/comic_identity/compile``)."""
    return cache_dir(COMPILE_CACHE)


def use_compile_cache(folder: Path | None = None,
                      environ: MutableMapping[str, str] | None = None) -> Path:
    """Point Inductor's and Triton's caches into ``folder`` (default :func:`compile_cache_folder`)
    unless the environment already names them; returns Inductor's cache folder in effect.

    Must run before the first compile of the process (Inductor fixes its folder on first use).
    """
    env = os.environ if environ is None else environ
    folder = compile_cache_folder() if folder is None else Path(folder)
    env.setdefault("TORCHINDUCTOR_CACHE_DIR", str(folder / "inductor"))
    env.setdefault("TRITON_CACHE_DIR", str(folder / "triton"))
    return Path(env["TORCHINDUCTOR_CACHE_DIR"])


def load_compile_artifacts(folder: Path | None = None) -> bool:
    """Load saved compile artefacts from ``folder`` into this process's caches; False when there
    are none or they do not load (then the warm-up compiles as usual; logged, never raised)."""
    path = (compile_cache_folder() if folder is None else Path(folder)) / ARTIFACTS_FILE
    try:
        data = path.read_bytes()
    except OSError:
        return False
    try:
        return torch.compiler.load_cache_artifacts(data) is not None
    except Exception as exc:  # noqa: BLE001 - a stale or foreign cache only costs a compile
        logger.info("compile artefacts in %s not used: %s", path, exc)
        return False


def save_compile_artifacts(folder: Path | None = None) -> Path | None:
    """Save this process's compile artefacts to ``folder`` (atomically); the path, or None when
    nothing was compiled."""
    saved = torch.compiler.save_cache_artifacts()
    if saved is None:
        return None
    data, _info = saved
    if not data:
        return None
    folder = compile_cache_folder() if folder is None else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomic(folder / ARTIFACTS_FILE, bytes(data))


def warm_compiled(warm_up: Callable[[], object], folder: Path | None = None) -> float:
    """Run a start-up ``warm_up`` (e.g. :meth:`pipelines.generation.PanelGenerator.warm_up`)
    with the kept compile artefacts loaded first and this run's saved after; returns seconds.

    A restarted server thus loads instead of compiling. Saving failures are logged, not raised
    (the app runs; the next start compiles again).
    """
    start = time.perf_counter()
    load_compile_artifacts(folder)
    warm_up()
    try:
        save_compile_artifacts(folder)
    except (OSError, RuntimeError) as exc:
        logger.info("compile artefacts not saved: %s", exc)
    return time.perf_counter() - start


__all__ = ["ARTIFACTS_FILE", "COMPILE_CACHE", "ZERO_GPU_ENV", "compile_cache_folder", "load_compile_artifacts",
           "repeated_blocks", "resolve_compile", "save_compile_artifacts", "use_compile_cache", "warm_compiled"]
