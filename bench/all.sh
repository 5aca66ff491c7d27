#!/usr/bin/env bash
# Every figure of the training-step goals in one command (README, "Benchmarks"): the C++
# components against plain LibTorch (peft-bench all: AdamW, NF4 dequantization and the NF4
# linear against copy_ and the dense linear, merged and unmerged inference against the base,
# the trainer's step against the C++ eager loop and sgemm), Sparse LoRA's structured pruning
# at a rank where the adapters matter, then the step side by side with eager PyTorch and the
# HF PEFT step (bench/compare_step.py) in fp32 and in bf16.
#
#   bench/all.sh [--threads N] [--quick] [--out DIR]
#
# --threads: intra-op threads for every path (default 2). --quick: tiny shapes and few steps
# (a couple of minutes: checks that every part runs, its figures mean little). --out: also
# keep each part's output and compare_step's JSON there. Without --quick the whole grid runs:
# about an hour on the 2-core VM. Needs build/bin/peft-bench ($PEFT_BENCH); the Python paths
# come from the interop environment (tests/interop/setup.sh), and compare_step says which are
# missing. Figures are printed, never checked; the exit status is non-zero only when a part
# fails to run.
set -uo pipefail
cd "$(dirname "$0")/.."
threads=2 quick=0 out=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --threads) threads=${2:?--threads needs a number}; shift 2 ;;
    --quick) quick=1; shift ;;
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/all.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $threads =~ ^[1-9][0-9]*$ ]] || { echo "bench/all.sh: --threads: expected a positive integer, found \"$threads\"" >&2; exit 2; }
BENCH=${PEFT_BENCH:-build/bin/peft-bench}
[[ -x $BENCH ]] || { echo "bench/all.sh: $BENCH is not built (bash launch/build.sh)" >&2; exit 1; }
[[ -n $out ]] && mkdir -p "$out"

failed=()
part() {  # part NAME COMMAND...: runs it, tees its output to $out/NAME.txt when --out is given
  local name=$1 rc
  shift
  echo
  echo "#### $name: $*"
  if [[ -n $out ]]; then "$@" 2>&1 | tee "$out/$name.txt"; rc=${PIPESTATUS[0]}; else "$@"; rc=$?; fi
  ((rc == 0)) || failed+=("$name (exit $rc)")
}
json_fp32=() json_bf16=()  # compare_step --json FILE, as arrays so that an --out with spaces stays one word
[[ -n $out ]] && json_fp32=(--json "$out/step_fp32.json") json_bf16=(--json "$out/step_bf16.json")

echo "bench/all.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $threads threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $( (grep -q avx512_bf16 /proc/cpuinfo && echo 'AVX-512 BF16') || (grep -q avx2 /proc/cpuinfo && echo 'AVX2') || echo 'no AVX2')"
if ((quick)); then
  part components "$BENCH" all --quick --threads "$threads"
  part sparse_structured "$BENCH" step --shape tiny --method sparse_lora --structured --rank 32 \
    --targets q_lin,k_lin,v_lin,out_lin,lin1,lin2 --trainer-only --threads "$threads" --steps 4 --no-sgemm
  part step_fp32 python3 bench/compare_step.py --quick --threads "$threads" --bench "$BENCH" "${json_fp32[@]}"
  part step_bf16 python3 bench/compare_step.py --quick --precision bf16 --methods lora --no-mlm --threads "$threads" --bench "$BENCH" "${json_bf16[@]}"
else
  part components "$BENCH" all --threads "$threads"
  # At r = 8 on q_lin/v_lin the adapters are ~0.35 % of the step: structured pruning shows at large ranks.
  for variant in lora sparse_unstructured sparse_structured; do
    args=(--method lora)
    [[ $variant == sparse_unstructured ]] && args=(--method sparse_lora)
    [[ $variant == sparse_structured ]] && args=(--method sparse_lora --structured)
    part "r256_$variant" "$BENCH" step "${args[@]}" --rank 256 --targets q_lin,k_lin,v_lin,out_lin,lin1,lin2 \
      --trainer-only --threads "$threads" --steps 4 --no-sgemm
  done
  part step_fp32 python3 bench/compare_step.py --threads "$threads" --bench "$BENCH" "${json_fp32[@]}"
  part step_bf16 python3 bench/compare_step.py --precision bf16 --shapes base --seqs 64 --methods lora --no-mlm \
    --threads "$threads" --bench "$BENCH" "${json_bf16[@]}"
fi

echo
if ((${#failed[@]})); then
  echo "bench/all.sh: parts that failed to run: ${failed[*]}"
  exit 1
fi
echo "bench/all.sh: every part ran${out:+ (outputs in $out)}"
