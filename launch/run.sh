#!/usr/bin/env bash
# Local launcher: picks the rank count, binds ranks to GPUs, checks the environment, then runs
#   mpirun -np N build/bin/peft-sweep SWEEP.toml [peft-sweep options]
# usage: launch/run.sh [-n RANKS] [SWEEP.toml] [peft-sweep options…]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${PEFT_SWEEP_BIN:-$here/build/bin/peft-sweep}
ranks=""
if [[ ${1:-} == "-n" ]]; then ranks=$2; shift 2; fi

command -v mpirun >/dev/null || { echo "launch/run.sh: mpirun not found (apt-get install openmpi-bin)" >&2; exit 1; }
[[ -x $BIN ]] || { echo "launch/run.sh: $BIN not built (bash launch/build.sh)" >&2; exit 1; }
gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then gpus=$(nvidia-smi -L 2>/dev/null | wc -l); fi
cores=$(nproc)
if [[ -z $ranks ]]; then
  # One rank per GPU; on CPU, dp ranks × 2 groups (the demo's layout), at least 2.
  if ((gpus > 0)); then ranks=$gpus; else ranks=4; fi
fi
flags=()
[[ $(id -u) -eq 0 ]] && flags+=(--allow-run-as-root)
# More ranks than cores: oversubscribe, and let idle ranks yield instead of busy-polling MPI.
((ranks > cores)) && flags+=(--oversubscribe --mca mpi_yield_when_idle 1)
if ((gpus > 0)); then
  # The driver binds each rank to GPU (node-local rank % GPUs it sees) and picks NCCL for a
  # group when its ranks' GPUs have distinct PCI bus ids, MPI otherwise: nothing to pass here.
  ldconfig -p 2>/dev/null | grep -q libnccl || echo "launch/run.sh: warning: libnccl not in the loader path; groups fall back to MPI" >&2
fi
echo "launch/run.sh: $ranks ranks on $cores cores, $gpus GPUs: mpirun ${flags[*]} -np $ranks $BIN $*" >&2
exec mpirun "${flags[@]}" -np "$ranks" "$BIN" "$@"
