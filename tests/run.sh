#!/usr/bin/env bash
# The README's test command: installs what is missing (Debian packages), builds, and runs every
# test: the GoogleTest suites (ctest, including the MPI integration tests), the analysis tests
# (pytest) and the Slurm cluster test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/install-deps.sh
PEFT_BUILD_DIR=${PEFT_BUILD_DIR:-build} bash launch/build.sh
BUILD_DIR=${PEFT_BUILD_DIR:-build}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
status=0
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" --timeout 600 || status=1
if compgen -G "analysis/tests/test_*.py" >/dev/null || compgen -G "tests/python/test_*.py" >/dev/null; then
  PEFT_BUILD_DIR="$BUILD_DIR" /usr/bin/python3 -m pytest -q tests/python analysis/tests 2>/dev/null || status=1
fi
exit $status
