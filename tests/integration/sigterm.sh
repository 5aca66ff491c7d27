#!/usr/bin/env bash
# SIGTERM: training stops, complete trials are committed, exit non-zero within 30 s, resumable.
source "$(dirname "$0")/common.sh"
write_sweep s.toml "1, 2, 3" 400 1
"$BIN/peft-sweep" s.toml > run1.log 2>&1 &
pid=$!
sleep 8
start=$(date +%s)
kill -TERM $pid
set +e
wait $pid; rc=$?
set -e
took=$(( $(date +%s) - start ))
[[ $rc -ne 0 ]] || fail "exit code 0 after SIGTERM"
((took <= 30)) || fail "took ${took}s to stop"
[[ -e out.h5 ]] || fail "no results file"
"$BIN/peft-sweep" s.toml --resume --output out.h5 > run2.log 2>&1 || { cat run2.log; fail "resume failed"; }
[[ $(complete_count out.h5) == 6 ]] || fail "expected 6 complete trials"
echo "sigterm: ok (stopped in ${took}s, rc $rc)"
