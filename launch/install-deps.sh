#!/usr/bin/env bash
# Installs everything peft-sweep needs from Debian 12's packages (run as root).
# Idempotent: does nothing when every package is already installed.
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev libopenblas0-openmp          # LibTorch 1.13 (CPU); OpenMP OpenBLAS, else matmuls run ~15x slower
  libopenmpi-dev openmpi-bin                # MPI
  libhdf5-dev hdf5-tools                    # results store (+ h5dump)
  libboost-program-options-dev libtomlplusplus-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev libutf8proc-dev
  libgtest-dev libgmock-dev
  python3 python3-h5py python3-pandas python3-matplotlib python3-pytest   # analysis/
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "peft-sweep: missing Debian packages: ${missing[*]} — run this script as root (or apt-get install them)" >&2
    exit 1
  fi
  echo "peft-sweep: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
