#!/usr/bin/env bash
# SIGTERM: training stops, complete trials are committed, exit non-zero within 30 s, resumable.
source "$(dirname "$0")/common.sh"
write_sweep s.toml "1, 2, 3" 400 1
"$BIN/peft-sweep" s.toml > run1.log 2>&1 &
pid=$!
# TERM right after the first trial is committed (its trial_end in the event log), while five remain. (A fixed sleep raced a
# fast build: LibTorch 2.x with MKL on an AVX-512 CPU ran all six trials in under 8 s.)
for _ in $(seq 600); do
  grep -q '"event":"trial_end"' out.h5.events.jsonl 2>/dev/null && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
kill -0 $pid 2>/dev/null || { cat run1.log; fail "the sweep ended before the signal"; }
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
