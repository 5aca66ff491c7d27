#!/usr/bin/env bash
# Makes the reference environment for the interop tests and the benchmarks: a virtual
# environment with the pinned reference libraries (torch, transformers, peft, bitsandbytes,
# tokenizers, safetensors, numpy). peft-sweep itself never needs it at run time.
#
#   bash tests/interop/setup.sh            # creates or reuses .cache/interop-venv
#   PEFT_INTEROP_VENV=DIR bash tests/interop/setup.sh
#
# Prints the environment's python on the last line of stdout. Exit 0 when the environment is
# ready; exit 3 (and one line saying why) when PyPI cannot be reached, so callers can skip.
set -uo pipefail
cd "$(dirname "$0")/../.."
VENV=${PEFT_INTEROP_VENV:-$(pwd)/.cache/interop-venv}
PINS=(torch==2.15.0 transformers==5.23.0 peft==0.21.2 bitsandbytes==0.50.2
      tokenizers==0.23.3 safetensors==0.8.0 numpy)
STAMP="$VENV/.peft-pins"
want=$(printf '%s\n' "${PINS[@]}")
if [[ -x $VENV/bin/python && -f $STAMP && "$(cat "$STAMP")" == "$want" ]]; then
  echo "$VENV/bin/python"; exit 0        # reuse: same pins, already installed
fi
PY=${PEFT_INTEROP_BASE_PYTHON:-/usr/bin/python3}
[[ -x $PY ]] || PY=$(command -v python3)
if ! timeout 30 "$PY" - <<'PYEOF' >/dev/null 2>&1
import urllib.request
urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=20).read(64)
PYEOF
then
  echo "interop: PyPI is not reachable; the reference environment was not made" >&2
  exit 3
fi
start=$(date +%s)
rm -rf "$VENV"
"$PY" -m venv "$VENV" || { echo "interop: could not create a venv with $PY (install python3-venv)" >&2; exit 1; }
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2 || exit 1
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PINS[@]}" >&2 || {
  echo "interop: pip could not install ${PINS[*]}" >&2; exit 1; }
printf '%s\n' "${PINS[@]}" >"$STAMP"
echo "interop: reference environment ready in $(( $(date +%s) - start )) s: $VENV" >&2
echo "$VENV/bin/python"
