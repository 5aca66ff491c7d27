#!/usr/bin/env bash
# Configures and builds peft-sweep into build/ (binaries in build/bin/). Extra arguments go to
# CMake, e.g. -DCMAKE_PREFIX_PATH=/path/to/libtorch for a CUDA LibTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${PEFT_BUILD_DIR:-build}
JOBS=${PEFT_JOBS:-$(nproc)}
start=$(date +%s)
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
# PEFT_TARGETS="peft-sweep peft-tool": build only those (default: everything, tests included).
read -r -a targets <<<"${PEFT_TARGETS:-}"
cmake --build "$BUILD_DIR" -j "$JOBS" ${targets[@]:+--target "${targets[@]}"}
echo "peft-sweep: build finished in $(( $(date +%s) - start )) s ($BUILD_DIR/bin)"
