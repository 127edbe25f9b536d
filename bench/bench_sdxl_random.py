"""Speed and memory of panel generation and identity training, each optimisation on and off.

    python -m bench.bench_sdxl_random --arch sdxl-random --device cuda            # the H200 run
    python -m bench.bench_sdxl_random --arch preset --preset tiny --smoke         # CPU, seconds
    python -m bench.bench_sdxl_random --only flops                                # FLOP floor, CPU

Sections (``--only``, comma list):

* ``flops`` — FLOPs of every part of one panel and one training step, counted with
  ``torch.utils.flop_counter.FlopCounterMode`` on the meta device (no memory, no GPU), and the
  physical floor in seconds at ``--peak-tflops`` (790 bf16 TFLOP/s measured on an H200 here).
* ``panel`` — one comic panel drawn by the app's own ``pipelines.generation.PanelGenerator``
  (diffusers' ``StableDiffusionXLPipeline`` underneath) with one bound identity (random vectors
  for "Alice Smith"): 1024x1024, 30 DPM-Solver multistep steps, classifier-free guidance 8.5, the
  preset's negative prompt, PIL output (the sdxl-random defaults; ``--arch preset`` uses the
  preset's generation section). The variant's switches reach it as the app's config
  (``runtime.*``), applied by ``apply_memory_switches`` exactly as in the app.
* ``train`` — one StableIdentity training step at 512x512 and the 500-step identity it implies
  (setup + 500 x the mean step). ``--train-impl trainer`` (``auto``, the default, when it
  imports and runs) times the app's own step, ``stableidentity.trainer.StableIdentityTrainer
  .step``, on a synthetic aligned face with precomputed masks (detection and parsing run once
  per photo, before training), with the variant's switches in the app's config (``runtime.*``
  applied as the loader does, ``train.*`` read by the trainer), through ``StableIdentityTrainer.run``
  (the app's loop, one loss read-back per step, one step behind), timed in chunks of
  ``PREFETCH`` steps after the augmentation pool is filled (the fill is timed apart and added
  to the identity). ``--train-impl step`` times a faithful step written here
  instead: VAE-encode of a precomputed augmented image, both text encoders with gradients
  flowing only into the two signal-word embedding rows (the output of the two identity MLPs),
  UNet forward + backward (frozen weights: input gradients only), the two-phase masked loss,
  gradient clipping and AdamW on the two MLPs. Each row's ``train_impl`` says which ran.

Variants (``--variants``, comma list; each is ONE change from the baseline, the ``--dtype`` run with
SDPA attention and the preset's defaults), with the config key each maps to:
``baseline``, ``bf16`` / ``fp16`` / ``fp32`` (``runtime.dtype``), ``attn-default``
(``runtime.attention: default``: diffusers' ``AttnProcessor``; plus transformers' eager attention
in the text encoders, which has no config key), ``channels-last`` (``runtime.channels_last``, UNet
and VAE), ``vae-tiling`` (``runtime.vae_tiling``, panel), ``cpu-offload`` (``runtime.cpu_offload``,
panel, CUDA only), ``compile`` (``runtime.compile: on`` with ``compile_scope: whole``,
``torch.compile`` of the UNet in place with ``--compile-mode`` as ``runtime.compile_mode``; the
warm-up column then holds the compile time), ``compile-regional`` (``compile_scope: regional``:
only the UNet's repeated blocks, panel), ``fast-step`` (``train.fast_step: on``: the static-buffer
step, a CUDA graph on CUDA; the baseline runs ``fast_step: off``),
``grad-ckpt`` (``train.gradient_checkpointing``), ``no-autocast`` (``train.mixed_precision: no``),
``augment-fresh`` (``train.augment_pool: 0``); the last two need the app's trainer.

Times are seconds: CUDA events after a synchronize on GPU, ``perf_counter`` on CPU; warm-up calls
are excluded and reported separately. Peak memory is ``torch.cuda.max_memory_allocated`` over the
timed calls, GiB, weights included. The JSON (``--json``) is rewritten after every row, so a run
cut short by a timeout keeps what it measured.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # allow `python bench/bench_sdxl_random.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sdxl_random.driver import Plan, main, make_plan, parse_args, run
from bench.sdxl_random.flops import count_flops, unet_flops
from bench.sdxl_random.panel import PANEL_CHARACTER, panel_identity, run_panel_variant
from bench.sdxl_random.summary import (
    PANEL_COLUMNS,
    TARGETS,
    TRAIN_COLUMNS,
    summarize,
    summary_table,
)
from bench.sdxl_random.train import (
    FaithfulTrainStep,
    IdentityMLP,
    SignalEmbedding,
    TrainBatch,
    _signal_ids,
    make_train_batch,
    real_trainer,
    run_train_variant,
    run_trainer_variant,
    signal_embeddings,
    synthetic_face,
)
from bench.sdxl_random.variants import (
    ALL_VARIANTS,
    DTYPES,
    H200_BF16_TFLOPS,
    PANEL_PROMPT,
    PANEL_VARIANTS,
    SECTIONS,
    TRAIN_PROMPT,
    TRAIN_VARIANTS,
    TRAINER_ONLY,
    Variant,
    applied,
    compiled,
    make_variant,
    rng_devices,
    skip_reason,
)

__all__ = ["ALL_VARIANTS", "DTYPES", "H200_BF16_TFLOPS", "PANEL_CHARACTER", "PANEL_COLUMNS", "PANEL_PROMPT",
           "PANEL_VARIANTS", "SECTIONS", "TARGETS", "TRAINER_ONLY", "TRAIN_COLUMNS", "TRAIN_PROMPT",
           "TRAIN_VARIANTS", "FaithfulTrainStep", "IdentityMLP", "Plan", "SignalEmbedding", "TrainBatch",
           "Variant", "_signal_ids", "applied", "compiled", "count_flops", "main", "make_plan",
           "make_train_batch", "make_variant", "panel_identity", "parse_args", "real_trainer", "rng_devices",
           "run", "run_panel_variant", "run_train_variant", "run_trainer_variant", "signal_embeddings",
           "skip_reason", "summarize", "summary_table", "synthetic_face", "unet_flops"]

if __name__ == "__main__":
    sys.exit(main())
