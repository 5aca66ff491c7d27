#!/usr/bin/env bash
# --resume onto an HDF5 file that is not a peft-sweep results file is refused, file untouched.
source "$(dirname "$0")/common.sh"
write_sweep s.toml 1 5
/usr/bin/python3 -c "import h5py; f=h5py.File('$WORK/out.h5','w'); f['x']=[1,2,3]"
sum_before=$(sha256sum out.h5)
set +e
mpi 2 "$BIN/peft-sweep" s.toml --resume > log 2>&1; rc=$?
set -e
cat log
[[ $rc -ne 0 ]] || fail "accepted a foreign file"
grep -q "not a peft-sweep results file" log || fail "unclear message"
[[ $(sha256sum out.h5) == "$sum_before" ]] || fail "the foreign file was modified"
echo "resume_foreign: ok"
