#!/usr/bin/env bash
# The README's test command: installs what is missing (Debian packages), builds, and runs every
# test: the GoogleTest suites and MPI integration tests (ctest), the analysis tests (pytest)
# and the Slurm cluster test (part of ctest; skipped where Slurm cannot start).
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/install-deps.sh
export PEFT_BUILD_DIR=${PEFT_BUILD_DIR:-build}
bash launch/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
status=0
ctest --test-dir "$PEFT_BUILD_DIR" --output-on-failure -j "$(nproc)" --timeout 900 || status=1
if compgen -G "tests/python/test_*.py" >/dev/null; then
  PEFT_BUILD_DIR="$(pwd)/$PEFT_BUILD_DIR" /usr/bin/python3 -m pytest -q tests/python || status=1
fi
exit $status
