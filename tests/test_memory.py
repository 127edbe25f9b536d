"""Memory that fits: `dtype: auto` on the CPU, the need per dtype and device, the one-line refusal."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bench.arch import PUBLISHED_PARAMETERS
from configs import load_config
from models import loading
from models import memory

#: full-size SDXL base 1.0 + ViT-B/16 + BiSeNet (13.3 M), parameter counts
SDXL = memory.Sizes(
    diffusion=sum(PUBLISHED_PARAMETERS[k] for k in ("unet", "text_encoder", "text_encoder_2", "vae")),
    float32=PUBLISHED_PARAMETERS["fr_vit"] + 13_300_000, unet=PUBLISHED_PARAMETERS["unet"])
CPU, CUDA = torch.device("cpu"), torch.device("cuda")
GB = 1e9


def _runtime(dtype: str):
    return dataclasses.replace(load_config("sdxl").runtime, dtype=dtype)


def test_auto_picks_bfloat16_on_a_cpu_with_bf16_and_float32_without(monkeypatch):
    monkeypatch.setattr(loading, "cpu_supports_bf16", lambda: True)
    assert loading.resolve_dtype(_runtime("auto"), CPU) == torch.bfloat16
    assert loading.resolve_dtype(_runtime("float32"), CPU) == torch.float32  # asked for
    monkeypatch.setattr(loading, "cpu_supports_bf16", lambda: False)
    assert loading.resolve_dtype(_runtime("auto"), CPU) == torch.float32
    assert loading.resolve_dtype(_runtime("bfloat16"), CPU) == torch.bfloat16


def test_bf16_detection_follows_this_cpu():
    loading.cpu_supports_bf16.cache_clear()
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert loading.cpu_supports_bf16() == native
    if native:  # this machine's CPU has it: the sdxl preset's auto resolves to bf16 here
        assert loading.resolve_dtype(_runtime("auto"), CPU) == torch.bfloat16


def test_the_need_of_full_sdxl_matches_what_was_measured():
    kwargs = dict(train_resolution=512, draw_pixels=512 * 512, device=CPU)
    bf16 = memory.estimate(SDXL, torch.bfloat16, **kwargs)
    fp32 = memory.estimate(SDXL, torch.float32, **kwargs)
    # measured on a 24 GB CPU machine (REFERENCE.md 7): load 7.1 GB, train 9.9 GB, draw 7.8 GB
    assert 7.0 * GB < bf16.load < 8.8 * GB
    assert 9.5 * GB < bf16.train < 11.5 * GB
    assert 7.5 * GB < bf16.draw < 9.5 * GB
    assert 13 * GB < fp32.load < fp32.peak < 22 * GB  # measured 13-18 GB
    big = memory.estimate(SDXL, torch.bfloat16, train_resolution=512, draw_pixels=1024 * 1024, device=CPU)
    assert big.draw > bf16.draw  # a 1024² panel needs more than a 512² one


def test_a_16_gb_laptop_is_told_to_use_bf16_instead_of_being_killed():
    kwargs = dict(train_resolution=512, draw_pixels=1024 * 1024, cpu_offload=False)
    with pytest.raises(memory.InsufficientMemory) as info:
        memory.check_fits("sdxl", SDXL, torch.float32, CPU, available=int(15 * GB), **kwargs)
    message = str(info.value)
    assert "\n" not in message and "runtime.dtype: bfloat16" in message and "--preset tiny" in message
    assert "of RAM in float32 on cpu" in message and "15.0 GB is available" in message
    # bf16 fits the same laptop; with too little for anything only --preset tiny is offered
    assert memory.check_fits("sdxl", SDXL, torch.bfloat16, CPU, available=int(15 * GB), **kwargs)
    with pytest.raises(memory.InsufficientMemory) as info:
        memory.check_fits("sdxl", SDXL, torch.bfloat16, CPU, available=int(4 * GB), **kwargs)
    assert "runtime.dtype" not in str(info.value) and "--preset tiny" in str(info.value)
    # unknown available memory never refuses
    assert memory.check_fits("sdxl", SDXL, torch.float32, CPU, available=None, **kwargs)


def test_a_small_gpu_is_offered_cpu_offload_and_gpu_needs_exclude_the_process():
    kwargs = dict(train_resolution=512, draw_pixels=1024 * 1024)
    need = memory.estimate(SDXL, torch.float16, device=CUDA, **kwargs)
    offloaded = memory.estimate(SDXL, torch.float16, device=CUDA, cpu_offload=True, **kwargs)
    assert offloaded.draw < need.draw and offloaded.train == need.train
    assert need.load < memory.estimate(SDXL, torch.float16, device=CPU, **kwargs).load
    with pytest.raises(memory.InsufficientMemory) as info:
        memory.check_fits("sdxl", SDXL, torch.float16, CUDA, available=int(8.5 * GB),
                          cpu_offload=False, **kwargs)
    assert "of GPU memory" in str(info.value) and "runtime.cpu_offload: true" in str(info.value)


def test_parameter_counts_come_from_the_safetensors_header(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({"a": torch.zeros(3, 4, dtype=torch.float16), "b": torch.zeros(5)}, str(path))
    assert memory.safetensors_numel(path) == 17 == memory.count([path])
    pickle = tmp_path / "w.bin"
    torch.save({"a": torch.zeros(1000)}, pickle)
    assert 1000 <= memory.file_numel(pickle) < 1400  # size / 4, a little pickle overhead


def test_available_memory_is_read_from_the_machine():
    free = memory.available_bytes(CPU)
    assert free is not None and 0 < free
    assert memory.available_bytes(torch.device("meta")) is None
