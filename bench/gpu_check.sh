#!/usr/bin/env bash
# The one prepared GPU check: the sdxl preset's own loader on a full-size fake Hugging Face cache
# (loading, training and drawing on CUDA), the face pass and regional attention on it, then
# full-size SDXL (random weights) panel, training and profiler runs on a lent H200, under 9 minutes
# wall (GPU_CHECK_BUDGET_S, default 530 s), JSON under $OUT, a summary and h200.json written last.
#
# 1. HERE (no GPU needed, no network): build what the device lacks into an ignored folder
#       bash bench/gpu_check.sh --prepare
#    -> bench/results/device_carry/ (~17 MB): site.tgz (pure-Python diffusers 0.42.1 and
#       transformers 5.24.0 from the interpreter that runs --prepare: the device image has no
#       diffusers and an older transformers), cache/clip_bpe/{vocab,merges} (the CLIP BPE
#       vocabulary; the device has no clip-anytorch wheel), commit (the commit measured, for
#       h200.json). --prepare runs with GPU_CHECK_PYTHON, else .venv/bin/python when the checkout
#       has one, else python3: any interpreter with the requirements installed. The .venv itself
#       (~7 GB) cannot travel (64 MiB limit) and is not needed: the device's python3 has torch +
#       CUDA, accelerate, tokenizers, safetensors.
# 2. ON THE DEVICE, one call of the device tool:
#       run(command="bash bench/gpu_check.sh", carry=["bench/results/device_carry"], timeout_s=595)
#    Results: $OUT/{env.txt,fake_hub.txt,loader.json,faces.json,panel.json,train.json,profile.json,
#    summary.txt,h200.json,log.txt}. Copy $OUT/h200.json to bench/results/h200.json and commit it
#    when its "gpu" is an H200 (bench.sdxl_random.h200 refuses other GPUs for that file).
#
# Sections, in order, as separate processes with their own timeouts inside one overall budget
# (a section that would start with < 40 s left is skipped, and every benchmark rewrites its JSON
# after each row, so a timeout keeps what was measured):
#   fake_hub  python -m bench.fake_hub --full-size into $FAKE_HUB (default /tmp/comic_fake_hub;
#             ~7 GB of disk, ~6 GB of RAM, about 110 s on the H200; kept for a rerun on a warm machine)
#   loader    bench_sdxl_random --arch preset --preset sdxl on that cache: the preset's own loader
#             builds the components on CUDA, then one panel and a few training steps (~40 s)
#   faces     bench/bench_panel.py --preset sdxl --compile off on that cache: regional / plain with
#             two identities and the face pass per face (eager, as measured last round)
#   panel     flops + panels: baseline (eager) and compile-regional (the CUDA default; its warm-up
#             column is the compile time)
#   train     training steps: baseline (eager) and fast-step (train.fast_step, CUDA graph)
#   profile   torch.profiler over 10 steps of each: GPU busy ms, kernels, CPU ms, aten::to, top kernels
#   compile   (only when GPU_CHECK_SECTIONS names it) whole-UNet torch.compile, panel and train
# Env: OUT (default bench/results/gpu_check-<date>), GPU_CHECK_PYTHON (default python3),
#      GPU_CHECK_BUDGET_S, GPU_CHECK_QUICK=0 for 3 repeats per panel instead of 1,
#      GPU_CHECK_SECTIONS (default "fake_hub loader faces panel train profile"; e.g. "compile" to
#      run that one), FAKE_HUB (where the fake cache goes), GPU_CHECK_DRY_RUN=1 to rehearse the
#      script on a CPU with the tiny preset and a small fake cache (a few minutes).
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CARRY=bench/results/device_carry

prepare() {
    local py="${GPU_CHECK_PYTHON:-}"
    if [ -z "$py" ]; then
        if [ -x "$ROOT/.venv/bin/python" ]; then py="$ROOT/.venv/bin/python"; else py=python3; fi
    fi
    local site
    site=$("$py" -c "import diffusers, os; print(os.path.dirname(os.path.dirname(diffusers.__file__)))") || {
        echo "error: $py cannot import diffusers; set GPU_CHECK_PYTHON to an interpreter with requirements.txt installed" >&2
        exit 1
    }
    rm -rf "$CARRY" && mkdir -p "$CARRY/cache"
    (cd "$site" && tar czf "$ROOT/$CARRY/site.tgz" --exclude=__pycache__ \
        diffusers diffusers-*.dist-info transformers transformers-*.dist-info) || exit 1
    COMIC_CACHE="$ROOT/$CARRY/cache" "$py" -c \
        "from models.clip_tokenizer import build_clip_tokenizer as b; print(b()('a photo of').input_ids)" || exit 1
    { git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown; } > "$CARRY/commit"
    git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo "(with uncommitted changes)" >> "$CARRY/commit"
    du -sh "$CARRY"; ls -la "$CARRY" "$CARRY/cache/clip_bpe"
    echo "carry: [\"$CARRY\"]"
}

if [ "${1:-}" = "--prepare" ]; then
    prepare
    exit $?
fi

OUT="${OUT:-$ROOT/bench/results/gpu_check-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
PY="${GPU_CHECK_PYTHON:-python3}"
BUDGET="${GPU_CHECK_BUDGET_S:-530}"
QUICK="--quick"; [ "${GPU_CHECK_QUICK:-1}" = "0" ] && QUICK=""
ARCH_ARGS="--arch sdxl-random --device cuda --dtype bf16"
LOADER_ARGS="--arch preset --preset sdxl --device cuda --dtype bf16"
FAKE_HUB="${FAKE_HUB:-/tmp/comic_fake_hub}"
FAKE_HUB_SIZE="--full-size"
SECTIONS="${GPU_CHECK_SECTIONS:-fake_hub loader faces panel train profile}"
FACES_ARGS="--preset sdxl --iters 2 --warmup 1 --compile off"  # eager: comparable to the last round, no compile in its budget
PANEL_VARIANTS="baseline,compile-regional"
if [ "${GPU_CHECK_DRY_RUN:-0}" = "1" ]; then
    ARCH_ARGS="--arch preset --preset tiny --device cpu --dtype fp32 --smoke --threads 1"
    LOADER_ARGS="--arch preset --preset sdxl --device cpu --dtype fp32 --smoke --threads 1 --panel-size 128 --panel-steps 2 --train-size 64"
    FAKE_HUB_SIZE=""
    FAKE_HUB="${FAKE_HUB}-small"
    FACES_ARGS="--preset tiny --iters 1 --warmup 0 --steps 2 --threads 1"
    PANEL_VARIANTS="baseline"  # Inductor on a CPU takes minutes; the dry run rehearses the script
    SECTIONS="${GPU_CHECK_SECTIONS:-fake_hub loader faces panel train profile}"
fi
LOG="$OUT/log.txt"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false GRADIO_ANALYTICS_ENABLED=False

if [ -f "$CARRY/site.tgz" ]; then
    rm -rf /tmp/gpu_check_site && mkdir -p /tmp/gpu_check_site
    tar xzf "$CARRY/site.tgz" -C /tmp/gpu_check_site
    export PYTHONPATH="/tmp/gpu_check_site:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
    export COMIC_CACHE="$ROOT/$CARRY/cache"
    # the carried transformers needs the image's tokenizers/regex/hub to be new enough; if it
    # cannot import there, fall back to the image's own transformers (diffusers stays carried)
    if ! timeout 120 "$PY" -c "import transformers, diffusers; from transformers import CLIPTextModel" >/dev/null 2>&1; then
        echo "note: carried transformers does not import here; using the image's" | tee -a "$LOG"
        rm -rf /tmp/gpu_check_site/transformers /tmp/gpu_check_site/transformers-*.dist-info
    fi
else
    echo "note: $CARRY/site.tgz missing (run 'bash bench/gpu_check.sh --prepare' here and carry it);" \
         "using whatever the device's python has" | tee -a "$LOG"
    export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
fi

{
    echo "== gpu_check $(date -u '+%Y-%m-%d %H:%M:%S') UTC, budget ${BUDGET}s"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv 2>&1
    timeout 90 "$PY" - <<'EOF' 2>&1
import sys, torch
print("python", sys.version.split()[0], "| torch", torch.__version__, "| cuda", torch.version.cuda,
      "| gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
import diffusers, transformers, tokenizers, accelerate
print("diffusers", diffusers.__version__, "| transformers", transformers.__version__,
      "| tokenizers", tokenizers.__version__, "| accelerate", accelerate.__version__)
if not torch.cuda.is_available():
    raise SystemExit("no CUDA device: ceilings not measured")
# the two ceilings (METHOD.md): bf16 matmul on random data, device-to-device copy
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16); b = torch.randn_like(a)
for _ in range(3): a @ b
s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
s.record(); [a @ b for _ in range(10)]; e.record(); torch.cuda.synchronize()
print(f"bf16 matmul 8192^3: {10 * 2 * 8192**3 / (s.elapsed_time(e) / 1e3) / 1e12:.0f} TFLOP/s")
x = torch.empty(2**30, dtype=torch.uint8, device="cuda"); y = torch.empty_like(x); y.copy_(x)
s.record(); [y.copy_(x) for _ in range(10)]; e.record(); torch.cuda.synchronize()
print(f"d2d copy: {10 * 2 * 2**30 / (s.elapsed_time(e) / 1e3) / 1e12:.2f} TB/s (read+write)")
EOF
} 2>&1 | tee "$OUT/env.txt" | tee -a "$LOG"

START=$SECONDS
limit_for() {  # limit_for NAME TIMEOUT_S -> prints the timeout to use, or nothing to skip
    local name=$1 limit=$2
    case " $SECTIONS " in *" $name "*) ;; *) return ;; esac
    local left=$((BUDGET - (SECONDS - START)))
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -lt 40 ]; then
        echo "== $name: skipped (${left}s of the budget left)" | tee -a "$LOG" >&2
        return
    fi
    echo "$limit"
}
section() {  # section NAME TIMEOUT_S ARGS...   (bench_sdxl_random with $SECTION_ARCH or $ARCH_ARGS)
    local name=$1 limit
    limit=$(limit_for "$1" "$2") || return
    [ -z "$limit" ] && return
    shift 2
    local arch="${SECTION_ARCH:-$ARCH_ARGS}"
    echo "== $name (timeout ${limit}s): bench_sdxl_random $arch $*" | tee -a "$LOG"
    # shellcheck disable=SC2086
    timeout --signal=TERM --kill-after=10 "$limit" "$PY" -m bench.bench_sdxl_random \
        $arch --json "$OUT/$name.json" "$@" 2>&1 | tee -a "$LOG"
    echo "== $name: exit ${PIPESTATUS[0]} after $((SECONDS - START))s" | tee -a "$LOG"
}

# The sdxl preset's own loader first: a fake cache with the real repository layouts at full size
# (random weights), then load + draw + train on it. Kept between runs on a warm machine.
limit=$(limit_for fake_hub 200)
if [ -n "$limit" ]; then
    if [ -f "$FAKE_HUB/complete" ]; then
        echo "== fake_hub: reusing $FAKE_HUB" | tee -a "$LOG"
    else
        echo "== fake_hub (timeout ${limit}s): bench.fake_hub $FAKE_HUB_SIZE into $FAKE_HUB" | tee -a "$LOG"
        rm -rf "$FAKE_HUB" && mkdir -p "$FAKE_HUB/comic"
        # the fake cache's own COMIC_CACHE (random face-parser weights never land in a real cache);
        # the CLIP vocabulary comes along from the carried cache where the device has no wheel
        [ -d "${COMIC_CACHE:-/nonexistent}/clip_bpe" ] && cp -r "$COMIC_CACHE/clip_bpe" "$FAKE_HUB/comic/"
        # shellcheck disable=SC2086
        COMIC_CACHE="$FAKE_HUB/comic" timeout --signal=TERM --kill-after=10 "$limit" \
            "$PY" -m bench.fake_hub $FAKE_HUB_SIZE \
            --hf-home "$FAKE_HUB/hf" --comic-cache "$FAKE_HUB/comic" 2>&1 | grep -v "Writing model shards" \
            | tee "$OUT/fake_hub.txt" | tee -a "$LOG"
        [ "${PIPESTATUS[0]}" = "0" ] && touch "$FAKE_HUB/complete"
        du -sh "$FAKE_HUB" 2>&1 | tee -a "$LOG"
        echo "== fake_hub: done after $((SECONDS - START))s" | tee -a "$LOG"
    fi
fi
if [ -f "$FAKE_HUB/complete" ]; then
    (   # the app's cache variables, pointed at the fake cache for these sections only
        export HF_HOME="$FAKE_HUB/hf" HF_HUB_CACHE="$FAKE_HUB/hf/hub" COMIC_CACHE="$FAKE_HUB/comic"
        SECTION_ARCH="$LOADER_ARGS" section loader 90 --only panel,train --quick --variants baseline \
            --train-steps 4 --train-warmup 1
        limit=$(limit_for faces 120)
        if [ -n "$limit" ]; then
            echo "== faces (timeout ${limit}s): bench_panel $FACES_ARGS" | tee -a "$LOG"
            # shellcheck disable=SC2086
            timeout --signal=TERM --kill-after=10 "$limit" "$PY" bench/bench_panel.py $FACES_ARGS \
                --json "$OUT/faces.json" 2>&1 | tee -a "$LOG"
            echo "== faces: exit ${PIPESTATUS[0]} after $((SECONDS - START))s" | tee -a "$LOG"
        fi
    )
else
    echo "== loader, faces: skipped (no fake cache)" | tee -a "$LOG"
fi

# Order: what the targets need first. Every variant is one config switch of the app against the
# eager, uncompiled baseline (bench_sdxl_random's docstring maps each to its key); panels run
# through the app's PanelGenerator, training through StableIdentityTrainer.run. Other variants
# (channels-last, fp16, grad-ckpt, ...) were measured before (docs/PERFORMANCE.md); name them in
# GPU_CHECK_SECTIONS runs with --variants if wanted.
section panel 150 --only flops,panel $QUICK --variants "$PANEL_VARIANTS"
section train 100 --only train --train-steps 16 --train-warmup 3 --variants baseline,fast-step
section profile 80 --only profile --profile-steps 10 --train-warmup 3 --variants baseline,fast-step
section compile 200 --only panel,train --quick --train-steps 16 --variants compile

JSONS=()
for name in $SECTIONS; do  # bench_sdxl_random results only (faces.json is bench_panel's)
    [ "$name" != faces ] && [ -f "$OUT/$name.json" ] && JSONS+=("$OUT/$name.json")
done
"$PY" -m bench.bench_sdxl_random --summarize "${JSONS[@]}" > "$OUT/summary.txt" 2>&1
COMMIT=$(head -1 "$CARRY/commit" 2>/dev/null || git rev-parse HEAD 2>/dev/null || echo unknown)
"$PY" -m bench.sdxl_random.h200 "$OUT" --commit "$COMMIT" > "$OUT/h200.txt" 2>&1 || cat "$OUT/h200.txt"
rm -f "$OUT/h200.txt"
echo "== total $((SECONDS - START))s of benchmarks; files in $OUT"
cat "$OUT/summary.txt"
cat "$OUT/h200.json" 2>/dev/null
