#!/usr/bin/env bash
# A group agrees on failure (README "Fault handling"): a fault injected at one rank and step
# (PEFT_TEST_FAULT, test-only) fails that trial once, on every rank of the group, with the
# failing rank's error; the group goes on to its next trial; nothing hangs. dp = 2 and dp = 3.
# Also: a SIGTERM at one rank only stops the whole group (the stop flag travels in the step's
# all-reduce), and the run resumes.
source "$(dirname "$0")/common.sh"

# $1 results file, $2 expected complete, $3 expected failed, $4 text the failed trial's error must hold
check() { /usr/bin/python3 - "$@" <<'PY'
import sys, h5py
path, want_ok, want_failed, text = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = lambda v: v.decode() if isinstance(v, bytes) else str(v)
with h5py.File(path, "r") as f:
    t = f["trials"]
    status = {k: s(t[k].attrs["status"]) for k in t}
    errors = [s(t[k].attrs.get("error", "")) for k in t if status[k] == "failed"]
ok = sum(v == "complete" for v in status.values())
failed = sum(v == "failed" for v in status.values())
if (ok, failed) != (want_ok, want_failed):
    sys.exit(f"{path}: {ok} complete / {failed} failed trials, expected {want_ok} / {want_failed}: {status}")
if failed and not all(text in e for e in errors):
    sys.exit(f"{path}: failed trial errors {errors} lack {text!r}")
print(f"{path}: {ok} complete, {failed} failed: {errors}")
PY
}

run_case() {  # $1 ranks = dp, $2 fault, $3 expected error text
  local n=$1 fault=$2 text=$3 out="$WORK/f$1-${2//[=,]/_}.h5"
  write_sweep s.toml "1" 24 "$n"
  sed -i "s/^batch_size = 16/batch_size = 18/" s.toml   # divisible by dp = 2 and 3
  set +e
  PEFT_TEST_FAULT=$fault timeout 300 mpirun -np "$n" --oversubscribe -x PEFT_TEST_FAULT "$BIN/peft-sweep" s.toml --output "$out" > run.log 2>&1
  local rc=$?
  set -e
  ((rc != 124)) || { cat run.log; fail "dp=$n $fault: hung (killed after 300 s)"; }
  ((rc == 0)) || { cat run.log; fail "dp=$n $fault: exit code $rc"; }
  check "$out" 1 1 "$text" || { cat run.log; fail "dp=$n $fault"; }
  # exit 0 (a failed trial is a result), and the end-of-run line counts the failure
  grep -q "1/2 trials complete, 1 failed (peft-sweep status" run.log || { cat run.log; fail "dp=$n $fault: the end-of-run line does not count the failed trial"; }
}

run_case 2 "rank=1,step=3,what=throw" "rank 1 of group 0 (world rank 1): PEFT_TEST_FAULT: injected exception at step 3 on rank 1"
run_case 3 "rank=2,step=5,what=data" "rank 2 of group 0 (world rank 2): PEFT_TEST_FAULT: unreadable training batch at step 5 on rank 2"
run_case 3 "rank=1,step=0,what=setup" "rank 1 of group 0 (world rank 1): PEFT_TEST_FAULT: injected failure before training on rank 1"
run_case 2 "rank=0,step=23,what=throw" "rank 0 of group 0 (world rank 0): PEFT_TEST_FAULT: injected exception at step 23 on rank 0"

# A SIGTERM raised at rank 1 only (step 3 of 400): rank 0 never sees a signal, yet the group stops.
write_sweep s.toml "1" 400 2
set +e
PEFT_TEST_FAULT="rank=1,step=3,what=stop" timeout 300 mpirun -np 2 --oversubscribe -x PEFT_TEST_FAULT "$BIN/peft-sweep" s.toml --output "$WORK/stop.h5" > stop.log 2>&1
rc=$?
set -e
((rc != 124)) || { cat stop.log; fail "stop at one rank: hung"; }
((rc == 130)) || { cat stop.log; fail "stop at one rank: exit code $rc, expected 130"; }
[[ $(complete_count "$WORK/stop.h5") == 0 ]] || fail "stop at one rank: a trial completed"
timeout 600 mpirun -np 2 --oversubscribe "$BIN/peft-sweep" s.toml --resume --output "$WORK/stop.h5" > resume.log 2>&1 || { cat resume.log; fail "resume after the stop failed"; }
[[ $(complete_count "$WORK/stop.h5") == 2 ]] || fail "resume: expected 2 complete trials"
echo "fault_agreement: ok"
