# Shared helpers for the MPI integration tests (sourced). $1 of each test: build/bin.
set -euo pipefail
BIN=${1:?usage: $0 BUILD_BIN_DIR}
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none   # containers without CMA
WORK=$(mktemp -d /tmp/peft-it-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
mkdir -p .cache
export PEFT_LOG_LEVEL=${PEFT_LOG_LEVEL:-warn}
mpi() { local n=$1; shift; mpirun -np "$n" --oversubscribe "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# Number of trials with status complete in a results file.
complete_count() { /usr/bin/python3 - "$1" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    print(sum(1 for k in f["trials"] if f["trials"][k].attrs["status"] in (b"complete", "complete")))
PY
}
# A small sweep: $1 = trials wanted via seeds list, $2 = steps, $3 = dp
write_sweep() {
  cat > "$1" <<TOML
[sweep]
name = "it"
output = "$WORK/out.h5"
dp = ${4:-1}
seeds = [${2}]

[model]
preset = "tiny"
cache_dir = "$WORK/.cache"

[train]
max_steps = ${3}
batch_size = 16
lr = 1e-3
eval_every = 0
inference_batch = 16
inference_repeats = 1

[grid]
method = ["lora", "head"]
rank = 4
dataset = "synthetic_sentiment"

[datasets.synthetic_sentiment]
synthetic_train = 320
synthetic_eval = 64
TOML
}
