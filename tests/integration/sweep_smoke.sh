#!/usr/bin/env bash
# smoke.toml on 2 ranks runs to a complete file; a second start refuses; --resume is a no-op.
source "$(dirname "$0")/common.sh"
sed "s|^output = .*|output = \"$WORK/smoke.h5\"|" "$SRC/sweeps/smoke.toml" > smoke.toml
mpi 2 "$BIN/peft-sweep" smoke.toml
[[ $(complete_count smoke.h5) == 3 ]] || fail "expected 3 complete trials"
/usr/bin/python3 -c "import h5py,pandas; f=h5py.File('smoke.h5'); d=pandas.DataFrame(f['summary'][:]); assert len(d)==3, d; print(d[['method','accuracy']])"
set +e
mpi 2 "$BIN/peft-sweep" smoke.toml > again.log 2>&1; rc=$?
set -e
[[ $rc -ne 0 ]] || fail "a second run without --resume must refuse"
grep -q "already exists" again.log || fail "refusal message missing: $(cat again.log)"
mpi 2 "$BIN/peft-sweep" smoke.toml --resume
[[ $(complete_count smoke.h5) == 3 ]] || fail "resume changed the count"
echo "sweep_smoke: ok"
