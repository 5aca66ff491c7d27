#!/usr/bin/env bash
# --dry-run previews the plan in one process, without mpirun and without the data: --ranks
# states the world size; without it a dp that does not divide the real one is an error that
# names sweep.dp's line:column and suggests --ranks.
source "$(dirname "$0")/common.sh"
"$BIN/peft-sweep" "$SRC/sweeps/full.toml" --dry-run --ranks 8 > plan.log 2>&1 || { cat plan.log; fail "--dry-run --ranks 8 failed"; }
head -3 plan.log
grep -q "rank groups of dp=2 (8 ranks)" plan.log || fail "the plan does not state 8 ranks in groups of dp=2"
set +e
"$BIN/peft-sweep" "$SRC/sweeps/full.toml" --dry-run > one.log 2>&1; rc=$?
"$BIN/peft-sweep" "$SRC/sweeps/full.toml" --dry-run --ranks 3 > three.log 2>&1; rc3=$?
"$BIN/peft-sweep" "$SRC/sweeps/full.toml" --ranks 8 > norun.log 2>&1; rc_run=$?
set -e
cat one.log three.log norun.log
[[ $rc == 2 && $rc3 == 2 && $rc_run == 2 ]] || fail "expected exit 2 (found $rc, $rc3, $rc_run)"
grep -Eq "full.toml:[0-9]+:[0-9]+: sweep.dp: 2 does not divide the 1 MPI ranks .*--ranks N" one.log || fail "no position or hint"
grep -Eq "full.toml:[0-9]+:[0-9]+: sweep.dp: 2 does not divide the 3 ranks of --ranks" three.log || fail "--ranks 3 not refused"
grep -q "states the world size of a --dry-run" norun.log || fail "--ranks without --dry-run must be refused"
echo "dry_run_preview: ok"
