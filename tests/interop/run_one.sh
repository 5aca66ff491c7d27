#!/usr/bin/env bash
# Runs one interop test (a plain Python script) with the reference environment's python.
#   run_one.sh SCRIPT.py [ARGS…]
# The python is $PEFT_INTEROP_PYTHON, else <source tree>/.cache/interop-venv/bin/python (made by
# tests/interop/setup.sh). Exit codes: 0 pass, 1 fail, 77 skip (one line on stdout saying why).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
py=${PEFT_INTEROP_PYTHON:-$src/.cache/interop-venv/bin/python}
if [[ ! -x $py ]]; then
  echo "interop: reference environment missing ($py; run tests/interop/setup.sh, which needs PyPI)"
  exit 77
fi
if ! "$py" -c 'import torch, transformers, peft, bitsandbytes, tokenizers, safetensors, numpy' 2>/dev/null; then
  echo "interop: reference environment incomplete ($py cannot import the pinned libraries; rerun tests/interop/setup.sh)"
  exit 77
fi
export PEFT_BUILD_DIR=${PEFT_BUILD_DIR:-$src/build}
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false
export PYTHONPATH=$here${PYTHONPATH:+:$PYTHONPATH}
exec "$py" "$@"
