"""A tiny random ArcFace-shaped ONNX model, shared by the InsightFace tests and the thread hammer."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch


class TinyArcFace(torch.nn.Module):
    """(B, 3, 112, 112) float -> (B, 512): the input and output shapes InsightFace routes to ArcFace."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, kernel_size=8, stride=8)
        self.fc = torch.nn.Linear(8 * 14 * 14, 512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


def write_tiny_arcface(path: Path) -> Path:
    """Export a seeded :class:`TinyArcFace` to ``path`` (parents created) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = TinyArcFace().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation notice
        # torch 2.14's default (dynamo) exporter needs onnxscript; the TorchScript one does not.
        torch.onnx.export(model, (torch.zeros(1, 3, 112, 112),), str(path), dynamo=False,
                          input_names=["data"], output_names=["fc1"],
                          dynamic_axes={"data": {0: "batch"}, "fc1": {0: "batch"}})
    return path
