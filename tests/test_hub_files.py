"""Downloads that finish: a snapshot is trusted only with every file; missing ones are fetched.

The network is the only thing faked: ``RemoteHub`` serves a second fake cache (written by
``bench/fake_hub.py``) as "the hub", and copies what is asked for into the local cache with the
hub's own blob/snapshot layout. Everything else (the checks, the choice of files, the loader) is
the product's.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

import pytest
import torch
from safetensors.torch import load_file, save_file

from bench.fake_hub import SDXL_REPO, VAE_REPO, environment, publish_snapshot, write_fake_hub
from configs import load_config
from models import hub_files
from models.hub_files import (HuggingFaceHub, ModelUnavailable, ensure_files, file_is_whole,
                                 sdxl_needs, vae_needs)


class RemoteHub:
    """The hub, played by the snapshot folders of another fake cache (network faked only)."""

    def __init__(self, remote: dict[str, Path], local_hub: Path) -> None:
        self.remote, self.local_hub = remote, local_hub
        self.downloads: list[tuple[str, list[str], list[str]]] = []

    def local_snapshot(self, repo: str) -> Path | None:
        return HuggingFaceHub().local_snapshot(repo)

    def remote_files(self, repo: str) -> dict[str, int | None]:
        root = self.remote[repo]
        return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}

    def download(self, repo: str, files: Sequence[str], force: Sequence[str]) -> Path:
        self.downloads.append((repo, list(files), list(force)))
        staged = self.local_hub / ".incoming"
        for name in files:
            target = staged / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.remote[repo] / name, target)
        folder = publish_snapshot(self.local_hub, repo, staged)
        shutil.rmtree(staged)
        return folder


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    """The "hub": a complete small fake cache, one snapshot folder per repository."""
    root = tmp_path_factory.mktemp("remote")
    return write_fake_hub(root / "hf", root / "comic")


@pytest.fixture
def local(tmp_path, monkeypatch):
    """An empty local cache the loader reads, with the hub reachable (faked)."""
    for key, value in environment(tmp_path / "hf", tmp_path / "comic").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(hub_files, "hub_endpoint_reachable", lambda: True)
    return tmp_path


def test_an_interrupted_download_is_finished_and_announced(remote, local, capsys):
    write_fake_hub(local / "hf", local / "comic", weights=False)  # configs only, as if cut short
    hub = RemoteHub(remote, local / "hf" / "hub")
    needs = sdxl_needs(load_config("sdxl").model)
    capsys.readouterr()
    folder = ensure_files(SDXL_REPO, needs, hub=hub)
    assert hub_files.missing_files(folder, needs) == []
    (repo, files, force), = hub.downloads
    wanted = {"text_encoder/model.fp16.safetensors", "text_encoder_2/model.fp16.safetensors",
              "unet/diffusion_pytorch_model.fp16.safetensors"}
    assert repo == SDXL_REPO and wanted <= set(files) and force == []
    line = capsys.readouterr().err.strip()
    size = sum((remote[SDXL_REPO] / name).stat().st_size for name in wanted)
    assert line.startswith(f"downloading {SDXL_REPO}: 3 file(s), {size / 1e6:.1f} MB into ")
    assert "\n" not in line
    # a complete snapshot is trusted as it is: nothing fetched, nothing printed
    assert ensure_files(SDXL_REPO, needs, hub=hub) == folder
    assert len(hub.downloads) == 1 and capsys.readouterr().err == ""


def test_the_variant_is_chosen_per_folder_from_what_the_hub_has(remote, local, tmp_path_factory):
    # a hub whose text_encoder_2 has only the plain float32 file
    mirror = tmp_path_factory.mktemp("mirror") / "sdxl"
    shutil.copytree(remote[SDXL_REPO], mirror)
    fp16 = mirror / "text_encoder_2" / "model.fp16.safetensors"
    state = {k: v.float() for k, v in load_file(str(fp16)).items()}
    save_file(state, str(mirror / "text_encoder_2" / "model.safetensors"), metadata={"format": "pt"})
    fp16.unlink()
    hub = RemoteHub({**remote, SDXL_REPO: mirror}, local / "hf" / "hub")
    folder = ensure_files(SDXL_REPO, sdxl_needs(load_config("sdxl").model), hub=hub)
    files = hub.downloads[0][1]
    assert "text_encoder_2/model.safetensors" in files and "unet/diffusion_pytorch_model.fp16.safetensors" in files
    assert hub_files.variant_in(folder / "text_encoder_2", "fp16") is None
    assert hub_files.variant_in(folder / "unet", "fp16") == "fp16"
    from models.loading import load_diffusion_from_folder

    vae = ensure_files(VAE_REPO, vae_needs(), hub=hub)  # the separate fp16-fix VAE repository
    parts = load_diffusion_from_folder(folder, torch.float32, "fp16", vae)
    assert parts["text_encoder_2"].config.hidden_size == 64


def test_a_truncated_file_is_fetched_again_and_a_missing_one_on_the_hub_is_named(remote, local):
    write_fake_hub(local / "hf", local / "comic")
    hub = RemoteHub(remote, local / "hf" / "hub")
    snapshot = HuggingFaceHub().local_snapshot(SDXL_REPO)
    unet = snapshot / "unet" / "diffusion_pytorch_model.fp16.safetensors"
    data = unet.read_bytes()
    unet.unlink()  # the snapshot link, not the blob (which other snapshots may share)
    unet.write_bytes(data[: len(data) // 3])
    assert not file_is_whole(unet)
    needs = sdxl_needs(load_config("sdxl").model)
    folder = ensure_files(SDXL_REPO, needs, hub=hub)
    assert hub.downloads[0][2] == ["unet/diffusion_pytorch_model.fp16.safetensors"]
    assert file_is_whole(folder / "unet" / "diffusion_pytorch_model.fp16.safetensors")
    # a file the hub does not have either: one line naming it
    empty = {SDXL_REPO: local / "nothing"}
    (local / "nothing").mkdir()
    (folder / "unet" / "config.json").unlink()
    with pytest.raises(ModelUnavailable, match=r"on the hub has no unet/config\.json"):
        ensure_files(SDXL_REPO, needs, hub=RemoteHub(empty, local / "hf" / "hub"))
