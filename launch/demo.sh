#!/usr/bin/env bash
# The README's demo command: installs what is missing, builds peft-sweep (only it: the tests
# are not needed to run the demo and take most of a full build), runs the demo sweep
# (sweeps/demo.toml: tiny DistilBERT, synthetic tasks, 4 ranks in 2 groups of dp=2) into
# results/demo.h5, then writes the report when the analysis stage is present.
# `launch/build.sh` builds everything, tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/install-deps.sh
BUILD_DIR=${PEFT_BUILD_DIR:-build}
start=$(date +%s)
# Configured as launch/build.sh does, when it has not been yet (an existing cache is kept).
[[ -f $BUILD_DIR/CMakeCache.txt ]] || cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR" -j "${PEFT_JOBS:-$(nproc)}" --target peft-sweep
echo "demo: peft-sweep built in $(( $(date +%s) - start )) s"
mkdir -p results
extra=()
[[ -e results/demo.h5 ]] && extra+=(--resume)   # a second run completes what is missing
bash launch/run.sh -n 4 sweeps/demo.toml --output results/demo.h5 "${extra[@]}"
if [[ -f analysis/report.py ]]; then
  /usr/bin/python3 analysis/report.py results/demo.h5 -o report/ && echo "demo: report in report/report.md"
fi
h5ls -r results/demo.h5 | head -20 || true
