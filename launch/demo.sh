#!/usr/bin/env bash
# The README's demo command: installs what is missing, builds, runs the demo sweep
# (sweeps/demo.toml: tiny DistilBERT, synthetic tasks, 4 ranks in 2 groups of dp=2) into
# results/demo.h5, then writes the report when the analysis stage is present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/install-deps.sh
bash launch/build.sh
mkdir -p results
extra=()
[[ -e results/demo.h5 ]] && extra+=(--resume)   # a second run completes what is missing
bash launch/run.sh -n 4 sweeps/demo.toml --output results/demo.h5 "${extra[@]}"
if [[ -f analysis/report.py ]]; then
  /usr/bin/python3 analysis/report.py results/demo.h5 -o report/ && echo "demo: report in report/report.md"
fi
h5ls -r results/demo.h5 | head -20 || true
