"""Why the MLPs train in float32 by default (``train.mlp_dtype``): Adam steps lost to rounding.

    python -m bench.bench_mlp_dtype [--steps 10] [--lr 5e-5]

A (1536, 768) weight matrix stored as N(0, 0.02), as the MLPs' EqualLinear weights are at the
start (the official init), takes AdamW steps of the preset's learning rate with random gradients
in float32, bfloat16 and float16. Reported: the fraction of weights still exactly at their start
value after the first step and after ``--steps`` steps. A weight that never moves is a weight the
step size cannot reach at that precision (bfloat16's resolution at 0.02 is ~1.2e-4, twice 5e-5).
"""

from __future__ import annotations

import argparse

import torch


def unchanged_fractions(dtype: torch.dtype, steps: int, lr: float, seed: int = 0) -> tuple[float, float]:
    """(fraction unchanged after 1 step, after ``steps`` steps) for weights of ``dtype``."""
    generator = torch.Generator().manual_seed(seed)
    weight = (torch.randn(1536, 768, generator=generator) * 0.02).to(dtype).requires_grad_()
    start = weight.detach().clone()
    optimizer = torch.optim.AdamW([weight], lr=lr, weight_decay=0.01)
    first = 0.0
    for step in range(steps):
        weight.grad = torch.randn(weight.shape, generator=generator).to(dtype)
        optimizer.step()
        if step == 0:
            first = (weight.detach() == start).float().mean().item()
    return first, (weight.detach() == start).float().mean().item()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--lr", type=float, default=5e-5)
    args = parser.parse_args(argv)
    print(f"{'dtype':10} {'unchanged after 1 step':>23} {'after ' + str(args.steps) + ' steps':>16}")
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        first, last = unchanged_fractions(dtype, args.steps, args.lr)
        print(f"{str(dtype).removeprefix('torch.'):10} {first:>23.1%} {last:>16.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
