#!/usr/bin/env bash
# The device check: one unattended call on a machine with one GPU (an H200 in mind) and the
# pinned PyPI torch of the interop environment (tests/interop/setup.sh). No network is used:
# the python (and its torch / transformers) is given, never downloaded.
#
#   tests/gpu/run.sh [--python PY] [--build-dir DIR] [--skip-build] [--check]
#     --python PY   python of the interop environment (default $PEFT_GPU_PYTHON, else
#                   .cache/interop-venv/bin/python)
#     --build-dir   where to build against the wheel's CUDA LibTorch (default build-gpu)
#     --skip-build  reuse an existing build in --build-dir
#     --check       CPU-only: argument checks and tool discovery, then stop; prints
#                   "no GPU: skipped" and exits 0 on a machine without a GPU (CI runs this)
#
# Steps (each with its own time limit; about 8 minutes in all on an H200 with 16 cores):
#   build      launch/build.sh -DCMAKE_PREFIX_PATH=<wheel's torch cmake dir> into build-gpu
#   ctest      the CUDA tests (Nf4Cuda.*: the NF4 kernel bit for bit against the CPU reference)
#   nccl       a dp = 1 sweep trial on the GPU (backend nccl) and a one-rank NCCL all-reduce
#   bf16       `peft-sweep trial --precision bf16 --device cuda` for every method
#   forward    `peft-tool forward` against transformers on the GPU, fp32 and bf16
#   bench      a LoRA step shaped like SST-2 (distilbert-base, batch 32, seq 128, bf16):
#              samples/s and the share of the H200's dense bf16 peak (989 TFLOP/s)
# A summary is printed last; the exit code is non-zero when any step failed.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PEFT_GPU_PYTHON:-$SRC/.cache/interop-venv/bin/python}
BUILD=build-gpu
SKIP_BUILD=0
CHECK=0
PEAK_TFLOPS=989   # H200 SXM, dense bf16 tensor-core peak (NVIDIA datasheet: 1979 with sparsity)
usage() { sed -n 6,13p "$0" >&2; exit 2; }
while (($#)); do
  case $1 in
    --python) [[ $# -ge 2 ]] || usage; PY=$2; shift 2 ;;
    --build-dir) [[ $# -ge 2 ]] || usage; BUILD=$2; shift 2 ;;
    --skip-build) SKIP_BUILD=1; shift ;;
    --check) CHECK=1; shift ;;
    -h|--help) usage ;;
    *) echo "tests/gpu/run.sh: unknown argument \"$1\"" >&2; usage ;;
  esac
done
[[ $BUILD = /* ]] || BUILD=$SRC/$BUILD
BIN=$BUILD/bin

# ---- tools
missing=()
for t in cmake ninja mpirun; do command -v "$t" >/dev/null || missing+=("$t"); done
[[ -x $SRC/launch/build.sh ]] || missing+=("launch/build.sh")
have_py=0
if [[ -x $PY ]] && "$PY" -c 'import torch, transformers' >/dev/null 2>&1; then have_py=1; else missing+=("python with torch+transformers ($PY)"); fi
gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true); fi
echo "tests/gpu/run.sh: source $SRC, build $BUILD, python $PY ($( ((have_py)) && "$PY" -c 'import torch;print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null || echo unusable)), GPUs $gpus"
if ((CHECK)); then
  ((${#missing[@]} == 0)) || echo "tests/gpu/run.sh: missing: ${missing[*]}"
  if ((gpus == 0)); then echo "no GPU: skipped"; exit 0; fi
  ((${#missing[@]} == 0)) || exit 1
  echo "tests/gpu/run.sh --check: ok (tools found, $gpus GPU(s))"
  exit 0
fi
((gpus > 0)) || { echo "tests/gpu/run.sh: no GPU (nvidia-smi -L lists none): nothing was checked" >&2; exit 1; }
((${#missing[@]} == 0)) || { echo "tests/gpu/run.sh: missing: ${missing[*]}" >&2; exit 1; }

WORK=$(mktemp -d /tmp/peft-gpu-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PEFT_LOG_LEVEL=${PEFT_LOG_LEVEL:-info}
declare -a SUMMARY=()
FAILED=0
T0=$(date +%s)
# step NAME LIMIT_SECONDS COMMAND...: runs, logs to $WORK/NAME.log, records PASS/FAIL.
step() {
  local name=$1 limit=$2; shift 2
  local t=$(date +%s)
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" > "$WORK/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$WORK/$name.log"
  local took=$(( $(date +%s) - t ))
  if ((rc == 0)); then SUMMARY+=("PASS  $name (${took}s)"); else SUMMARY+=("FAIL  $name (rc $rc$( ((rc == 124)) && echo ', timed out'), ${took}s)"); FAILED=1; fi
  return $rc
}

# ---- build against the wheel's CUDA LibTorch
build() {
  local prefix
  prefix=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)') || return 1
  "$PY" -c 'import torch, sys; sys.exit(0 if torch.version.cuda else "the wheel has no CUDA")' || return 1
  PEFT_BUILD_DIR=$BUILD "$SRC/launch/build.sh" -DCMAKE_PREFIX_PATH="$prefix" -DPEFT_WITH_CUDA=ON -DPEFT_WITH_NCCL=ON \
    -DPython3_EXECUTABLE="$PY" -DCMAKE_CUDA_ARCHITECTURES=90 || return 1
}
if ((SKIP_BUILD)); then SUMMARY+=("SKIP  build (--skip-build)"); else step build 300 build; fi
[[ -x $BIN/peft-sweep && -x $BIN/peft-tool && -x $BIN/peft-bench ]] || { SUMMARY+=("FAIL  binaries missing in $BIN"); FAILED=1; }

# ---- CUDA-labelled unit tests (the NF4 kernel bit for bit)
cuda_tests() {
  ctest --test-dir "$BUILD" -R 'Cuda' --output-on-failure -j4 || return 1
  ! grep -q 'Skipped' "$WORK/ctest.log" || { echo "a CUDA test skipped on a GPU machine"; return 1; }
  ctest --test-dir "$BUILD" -N -R 'Cuda' | grep -q 'Total Tests: [1-9]' || { echo "no CUDA test found"; return 1; }
}
step ctest 120 cuda_tests

# ---- a dp = 1 trial on the GPU through the NCCL communicator, and a one-rank NCCL all-reduce
sweep_toml() {  # $1 file, $2 output, $3 dp
  cat > "$1" <<TOML
[sweep]
name = "gpu"
output = "$2"
dp = $3
seeds = [1]
[model]
preset = "tiny"
cache_dir = "$WORK/.cache"
[train]
device = "cuda"
max_steps = 40
batch_size = 32
eval_every = 0
inference_batch = 32
inference_repeats = 1
[grid]
method = "lora"
rank = 4
dataset = "synthetic_sentiment"
[datasets.synthetic_sentiment]
synthetic_train = 640
synthetic_eval = 128
TOML
}
nccl() {
  cd "$WORK" || return 1
  sweep_toml nccl.toml "$WORK/nccl.h5" 1
  mpirun -np 1 "$BIN/peft-sweep" nccl.toml || return 1
  grep -q 'nccl backend' "$WORK/nccl.log" || { echo "the sweep did not use NCCL"; return 1; }
  "$PY" - "$WORK/nccl.h5" <<'PY' || return 1
import sys, h5py
with h5py.File(sys.argv[1]) as f:
    st = [f["trials"][k].attrs["status"] for k in f["trials"]]
st = [s.decode() if isinstance(s, bytes) else s for s in st]
print("trial status:", st)
sys.exit(0 if st == ["complete"] else 1)
PY
  mpirun -np 1 "$BIN/peft-bench" allreduce --device cuda --repeats 3 || return 1
  grep -q 'nccl' "$WORK/nccl.log" || return 1
}
step nccl 90 nccl

# ---- bf16 on the GPU, every method
bf16() {
  cd "$WORK" || return 1
  local m ok=0
  for m in lora sparse_lora hira qlora full head; do
    local extra=()
    [[ $m == sparse_lora ]] && extra=(--sparsity 0.5)
    if "$BIN/peft-sweep" trial --method "$m" --dataset synthetic_sentiment --preset tiny --device cuda --precision bf16 \
         --max-steps 30 --batch-size 32 --synthetic-train 640 --max-eval 128 "${extra[@]}" > "$WORK/bf16-$m.log" 2>&1 &&
       ! grep -qiE '"status": *"(failed|diverged)"|status (failed|diverged)' "$WORK/bf16-$m.log"; then
      echo "bf16 $m: ok ($(grep -oE 'acc(uracy)?[^,]*' "$WORK/bf16-$m.log" | tail -1))"
    else
      echo "bf16 $m: FAILED"; tail -n 5 "$WORK/bf16-$m.log"; ok=1
    fi
  done
  return $ok
}
step bf16 150 bf16

# ---- peft-tool forward against transformers on the GPU (fp32 and bf16)
forward() {
  cd "$WORK" || return 1
  "$BIN/peft-tool" forward --help 2>&1 | grep -q -- '--device' ||
    { echo "peft-tool forward has no --device/--precision option: the GPU comparison cannot run"; return 1; }
  "$PY" - "$BIN/peft-tool" <<'PY'
import json, subprocess, sys, torch, transformers
tool = sys.argv[1]
cfg = transformers.DistilBertConfig(vocab_size=1000, dim=64, n_layers=2, n_heads=4, hidden_dim=256, num_labels=2)
torch.manual_seed(0)
model = transformers.DistilBertForSequenceClassification(cfg).eval()
model.save_pretrained("ckpt")
ids = torch.randint(0, 1000, (4, 24)); mask = torch.ones_like(ids); mask[1, 16:] = 0
budget = {"fp32": 1e-4, "bf16": 5e-2}  # bf16: 8 mantissa bits through two layers
bad = 0
for prec, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=prec == "bf16"):
        ref = model.cuda()(input_ids=ids.cuda(), attention_mask=mask.cuda()).logits.float().cpu()
    out = subprocess.run([tool, "forward", "--model", "ckpt", "--head", "classifier", "--device", "cuda", "--precision", prec,
                          "--ids", json.dumps(ids.tolist()), "--mask", json.dumps(mask.tolist())], capture_output=True, text=True)
    if out.returncode:
        print(prec, "peft-tool failed:", out.stderr[-500:]); bad = 1; continue
    got = torch.tensor(json.loads(out.stdout.strip().splitlines()[-1])["logits"])
    err = (got - ref).abs().max().item()
    print(f"forward {prec}: max |peft - transformers| = {err:.3g} (budget {budget[prec]})")
    bad |= err > budget[prec]
sys.exit(bad)
PY
}
step forward 90 forward

# ---- the SST-2-shaped LoRA step
bench() {
  "$BIN/peft-bench" step --help 2>&1 | grep -q -- '--batch' ||
    { echo "peft-bench has no --batch/--seq option: it cannot run the SST-2 shape (batch 32, seq 128)"; return 1; }
  "$BIN/peft-bench" step --device cuda --precision bf16 --shape base --batch 32 --seq 128 --steps 30 || return 1
  local ms
  ms=$(grep -oE 'trainer [0-9.]+ ms/step' "$WORK/bench.log" | grep -oE '[0-9.]+' | head -1)
  [[ -n $ms ]] || { echo "no 'trainer X ms/step' line"; return 1; }
  # Model FLOPs of one step, distilbert-base (d 768, ff 3072, 6 layers), 32 x 128 tokens:
  # forward 2 * (4 d^2 + 2 d ff) per token per layer for the linears + 4 * seq * d for the
  # attention products; backward with frozen base weights computes input gradients only (one
  # more forward's worth). LoRA's own matmuls (r = 8) are under 1% and not counted.
  awk -v ms="$ms" -v peak="$PEAK_TFLOPS" 'BEGIN {
    d = 768; ff = 3072; L = 6; B = 32; S = 128;
    fwd = B * S * L * (2 * (4 * d * d + 2 * d * ff) + 4 * S * d);
    flops = 2 * fwd; s = ms / 1000;
    printf "bench: %.2f ms/step, %.0f samples/s, %.1f TFLOP/s = %.1f%% of %d TFLOP/s (H200 dense bf16 peak)\n",
           ms, B / s, flops / s / 1e12, 100 * flops / s / 1e12 / peak, peak }' | tee "$WORK/bench.figure"
}
step bench 90 bench

echo
echo "== summary (tests/gpu/run.sh, $(( $(date +%s) - T0 )) s, $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1))"
printf '%s\n' "${SUMMARY[@]}"
[[ -f $WORK/bench.figure ]] && cat "$WORK/bench.figure"
if ((FAILED)); then echo "RESULT: FAIL"; exit 1; fi
echo "RESULT: PASS"
