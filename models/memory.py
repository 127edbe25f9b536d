"""Will the preset fit? The memory it needs (per dtype and device) against what the machine has.

Needs come from the component sizes: the parameter count of every weight file in the checked
snapshots (read from the safetensors headers, no tensor loaded; a ``.bin`` pickle counts
``bytes / 4``), times the bytes per element of the dtype the diffusion parts load in (the FR-ViT and
the face parser stay float32). Training and drawing add working memory, estimated as a fraction of
the loaded weights scaled with the pixel count, from the full-size SDXL runs measured on a 24 GB
CPU machine in bfloat16 (REFERENCE.md section 7): loading 7.1 GB, a 512² training step 9.9 GB peak,
a 512² panel 7.8 GB peak.

Available memory: on the CPU, ``MemAvailable`` from ``/proc/meminfo`` (psutil where /proc is
missing), capped by a cgroup (container) limit; on CUDA, the free memory
``torch.cuda.mem_get_info`` reports. When the need exceeds it, :class:`InsufficientMemory` says in
one line what would fit (another ``runtime.dtype``, ``runtime.cpu_offload``) or ``--preset tiny``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch

from models.hub_files import ModelUnavailable

#: working memory of a 512x512 training step / panel, as a fraction of the loaded weights
#: (measured: (9.9 - 7.1) / 7.1 and (7.8 - 7.1) / 7.1 GB, full-size SDXL, bfloat16, CPU)
TRAIN_EXTRA_AT_512 = 0.40
DRAW_EXTRA_AT_512 = 0.10
#: memory the Python process holds besides the weights (torch, diffusers, gradio imported), bytes
PROCESS_BASE_BYTES = int(0.5e9)


class InsufficientMemory(ModelUnavailable):
    """The preset will not fit in this machine's memory; the message says what to change."""


@dataclass(frozen=True)
class Sizes:
    """Parameter counts of a preset's components (elements, not bytes)."""

    diffusion: int  # text encoders + UNet + VAE: loaded in the runtime dtype
    float32: int    # FR-ViT + face parser: always float32
    unet: int       # the largest single module (what model CPU offload keeps on the GPU)


@dataclass(frozen=True)
class MemoryNeed:
    """Peak bytes of one setting: after loading, while training, while drawing."""

    dtype: torch.dtype
    cpu_offload: bool
    load: int
    train: int
    draw: int

    @property
    def peak(self) -> int:
        return max(self.load, self.train, self.draw)


def safetensors_numel(path: Path) -> int:
    """Number of tensor elements in a safetensors file, from its header only."""
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    total = 0
    for key, entry in header.items():
        if key != "__metadata__":
            count = 1
            for dim in entry["shape"]:
                count *= dim
            total += count
    return total


def file_numel(path: Path) -> int:
    """Elements in a weight file: exact for safetensors, ``size / 4`` (float32) otherwise."""
    return safetensors_numel(path) if path.suffix == ".safetensors" else path.stat().st_size // 4


def count(paths: Iterable[Path]) -> int:
    """Total elements of the weight files ``paths``."""
    return sum(file_numel(p) for p in paths)


def estimate(sizes: Sizes, dtype: torch.dtype, *, train_resolution: int, draw_pixels: int,
             device: torch.device, cpu_offload: bool = False) -> MemoryNeed:
    """Peak bytes of loading, training at ``train_resolution``² and drawing ``draw_pixels``.

    On CUDA the bytes are GPU memory; with ``cpu_offload`` drawing keeps only the UNet there
    (training never offloads). On the CPU they are RAM, including the process itself.
    """
    item = torch.tensor([], dtype=dtype).element_size()
    weights = sizes.diffusion * item + sizes.float32 * 4
    base = PROCESS_BASE_BYTES if device.type == "cpu" else 0
    train_scale = (train_resolution / 512) ** 2
    draw_scale = draw_pixels / 512 ** 2
    draw_weights = sizes.unet * item if (cpu_offload and device.type == "cuda") else weights
    return MemoryNeed(dtype=dtype, cpu_offload=cpu_offload, load=base + weights,
                train=base + int(weights * (1 + TRAIN_EXTRA_AT_512 * train_scale)),
                draw=base + draw_weights + int(weights * DRAW_EXTRA_AT_512 * draw_scale))


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available() -> int | None:
    """Bytes left under a cgroup v2 / v1 memory limit (containers), or None without a limit."""
    pairs = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
             ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))
    for limit_file, usage_file in pairs:
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:
            return max(int(limit) - usage, 0)
    return None


def available_bytes(device: torch.device) -> int | None:
    """Free memory for ``device`` in bytes (RAM for the CPU, free VRAM on CUDA); None if unknown."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    ram = _meminfo_available()
    if ram is None:
        try:
            import psutil  # type: ignore[import-untyped]

            ram = int(psutil.virtual_memory().available)
        except ImportError:
            return None
    limit = _cgroup_available()
    return ram if limit is None else min(ram, limit)


def _gb(size: int) -> str:
    return f"{size / 1e9:.1f} GB"


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def check_fits(preset: str, sizes: Sizes, dtype: torch.dtype, device: torch.device, *,
               train_resolution: int, draw_pixels: int, cpu_offload: bool,
               available: int | None) -> MemoryNeed:
    """The need of the configured setting; :class:`InsufficientMemory` when it exceeds
    ``available`` (None: unknown, never refused). The one-line message names the settings that
    would fit, with their needs, and always ``--preset tiny``."""
    kwargs = dict(train_resolution=train_resolution, draw_pixels=draw_pixels, device=device)
    need = estimate(sizes, dtype, cpu_offload=cpu_offload, **kwargs)
    if available is None or need.peak <= available:
        return need
    memory = "GPU memory" if device.type == "cuda" else "RAM"
    options = []
    dtypes = [torch.bfloat16, torch.float16] if device.type == "cuda" else [torch.bfloat16]
    for other in dtypes:
        if other != dtype:
            alt = estimate(sizes, other, cpu_offload=cpu_offload, **kwargs)
            if alt.peak <= available:
                options.append(f"runtime.dtype: {_dtype_name(other)} (about {_gb(alt.peak)})")
                break
    if device.type == "cuda" and not cpu_offload:
        alt = estimate(sizes, dtype, cpu_offload=True, **kwargs)
        if alt.draw <= available:
            options.append(f"runtime.cpu_offload: true (drawing needs about {_gb(alt.draw)}; "
                           "training still needs all of it)")
    options.append("--preset tiny (offline, random weights)")
    raise InsufficientMemory(
        f"the '{preset}' preset needs about {_gb(need.peak)} of {memory} in {_dtype_name(dtype)} on "
        f"{device.type} (weights {_gb(need.load)}, training {_gb(need.train)}, drawing "
        f"{_gb(need.draw)}) but {_gb(available)} is available; set " + ", or ".join(options)
        + " (runtime.memory_check: false skips this check)")
