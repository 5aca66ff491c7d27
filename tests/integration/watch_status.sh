#!/usr/bin/env bash
# A sweep you can watch (issue 15, items 4-6): `peft-sweep status` on a running sweep and after
# it, the event log's lines, a resumed run appending to it, and the plain progress lines that
# replace the \r line when stderr is not a terminal.
source "$(dirname "$0")/common.sh"
STATUS() { "$BIN/peft-sweep" status "$@"; }

# 6 trials (lora and head × 3 seeds) on 2 groups of dp = 1: 2 run while 4 wait.
write_sweep sweep.toml "1, 2, 3" 300
mpi 2 "$BIN/peft-sweep" sweep.toml > run.log 2>&1 &
pid=$!

# While it runs: poll until a trial shows "running at step s/N" (the others waiting).
live=""
for _ in $(seq 1 240); do
  if [[ -f out.h5 ]] && STATUS out.h5 > status.txt 2> status.err; then
    if grep -q "running at step [0-9]*/300, loss [0-9.]*" status.txt; then live=1; break; fi
  fi
  kill -0 $pid 2>/dev/null || break
  sleep 0.25
done
[[ -n $live ]] || { cat run.log status.txt status.err >&2; fail "status never showed a running trial"; }
cp status.txt status-running.txt
grep -q "^run: started" status.txt || fail "a live run is not shown as started: $(cat status.txt)"
grep -Eq "^trials: 6 \(.*[0-9] running" status.txt || fail "no running count: $(cat status.txt)"
grep -Eq "[0-9] waiting" status.txt || fail "no waiting trial while the first wave runs: $(cat status.txt)"
[[ $(grep -c "  waiting  " status.txt) -ge 2 ]] || fail "expected waiting rows: $(cat status.txt)"
grep -Eq "^ETA: ~[0-9]" status.txt || fail "no ETA: $(cat status.txt)"

# Still while it runs, once a trial is committed to a part file held open by its writer: the
# part file is read (no note that it could not be), and the sweep is not disturbed.
seen_complete=""
while kill -0 $pid 2>/dev/null; do
  if STATUS out.h5 > status.txt 2> status.err && grep -q "^run: started" status.txt && grep -q "complete: acc" status.txt; then
    grep -q "^note: part file" status.txt && fail "a part file held by the running sweep could not be read: $(cat status.txt)"
    ls out.h5.part-g*.h5 > /dev/null 2>&1 && seen_complete=1 && break
  fi
  sleep 0.25
done
wait $pid || { cat run.log >&2; fail "the sweep failed while status was polled"; }
[[ -n $seen_complete ]] || echo "watch_status: note: the sweep ended before a committed trial was seen in a part file"

# After the sweep: every trial complete, the run ended, the best per method printed.
STATUS out.h5 > final.txt || fail "status after the sweep failed"
cat final.txt
grep -q "^trials: 6 (6 complete)$" final.txt || fail "not all complete: $(cat final.txt)"
grep -q "^run: ended .* (exit status 0)" final.txt || fail "run end missing"
grep -q "^ETA: done" final.txt || fail "ETA after the end"
[[ $(grep -c "complete: acc [0-9.]* (" final.txt) == 6 ]] || fail "6 complete rows expected"
grep -Eq "^  synthetic_sentiment +lora +acc [0-9.]+ +[0-9a-f]{12}  lora synthetic_sentiment r=4 seed=" final.txt || fail "best lora missing"
grep -Eq "^  synthetic_sentiment +head +acc [0-9.]+ +[0-9a-f]{12}  head synthetic_sentiment seed=" final.txt || fail "best head missing"
[[ $(complete_count out.h5) == 6 ]] || fail "the results file lost trials"

# The event log: every line a JSON object with the fields of its event.
/usr/bin/python3 - out.h5.events.jsonl out.h5 <<'PY' || fail "event log check"
import json, sys, math, h5py
lines = [json.loads(l) for l in open(sys.argv[1])]
need = {
    "run_start": {"time", "sweep", "world_size", "groups", "dp", "trials", "pending", "resume", "precision"},
    "trial_start": {"time", "trial", "group", "label"},
    "step": {"time", "trial", "group", "step", "total_steps", "loss", "lr", "samples_per_second", "eta_seconds", "wall_seconds"},
    "eval": {"time", "trial", "group", "step", "total_steps", "epoch", "loss", "accuracy", "f1", "perplexity", "wall_seconds"},
    "trial_end": {"time", "trial", "group", "status", "step", "total_steps", "wall_seconds", "metrics"},
    "run_end": {"time", "interrupted", "exit_code"},
}
count = {}
for l in lines:
    assert isinstance(l, dict), l
    ev = l["event"]
    assert ev in need, l
    missing = need[ev] - set(l)
    assert not missing, (ev, missing, l)
    count[ev] = count.get(ev, 0) + 1
assert count["run_start"] == 1 and count["run_end"] == 1, count
assert count["trial_start"] == 6 and count["trial_end"] == 6 and count["eval"] >= 6, count
with h5py.File(sys.argv[2], "r") as f:
    ids = set(f["trials"])
ends = {l["trial"]: l for l in lines if l["event"] == "trial_end"}
assert set(ends) == ids, (set(ends), ids)
for tid, e in ends.items():
    assert e["status"] == "complete" and e["step"] == 300 == e["total_steps"], e
    steps = [l for l in lines if l["event"] == "step" and l["trial"] == tid]
    assert steps[-1]["step"] == 300 and all(a["step"] < b["step"] for a, b in zip(steps, steps[1:])), tid
    assert all(math.isfinite(s["loss"]) and s["lr"] >= 0 and s["samples_per_second"] > 0 for s in steps), tid
    with h5py.File(sys.argv[2], "r") as f:
        assert abs(f["trials"][tid]["metrics"].attrs["accuracy"] - e["metrics"]["accuracy"]) < 1e-12, tid
print(f"event log: {len(lines)} lines, {count}")
PY

# Plain progress lines (stderr is a file here): no \r, one line per trial at the default
# cadence (its trials are shorter than 30 s), at the first 10 % step.
grep -q $'\r' run.log && fail "a \\r progress line off a terminal"
plain=$(grep -Ec "\[group [01]\] trial [0-9a-f]{12} step [0-9]+/300 \([0-9]+%\) loss" run.log || true)
[[ $plain == 6 ]] || fail "expected 6 progress lines (one per trial at the 30 s cadence), found $plain: $(cat run.log)"
[[ $(grep -Ec "step 30/300 \(10%\)" run.log) == 6 ]] || fail "the line is not at the first 10 % step"

# A resumed run appends to the same log (nothing left to run: a run_start and a run_end).
before=$(wc -l < out.h5.events.jsonl)
mpi 2 "$BIN/peft-sweep" sweep.toml --resume > resume.log 2>&1 || fail "resume: $(cat resume.log)"
after=$(wc -l < out.h5.events.jsonl)
[[ $after == $((before + 2)) ]] || fail "resume should append 2 lines ($before -> $after)"
head -c 2000 out.h5.events.jsonl | head -1 | grep -q '"run_start"' || fail "the log's first line changed"

# PEFT_PROGRESS_SECONDS=0: a line at every 10 % step (one trial, one rank).
write_sweep one.toml "1" 100
sed -i "s|^output = .*|output = \"$WORK/one.h5\"|; s|^method = .*|method = [\"head\"]|" one.toml
PEFT_PROGRESS_SECONDS=0 mpi 1 "$BIN/peft-sweep" one.toml > one.log 2>&1 || fail "one-trial sweep: $(cat one.log)"
pct=$(grep -Eo "step [0-9]+/100 \(([0-9]+)%\)" one.log | tr '\n' ' ')
[[ $pct == "step 10/100 (10%) step 20/100 (20%) step 30/100 (30%) step 40/100 (40%) step 50/100 (50%) step 60/100 (60%) step 70/100 (70%) step 80/100 (80%) step 90/100 (90%) step 100/100 (100%) " ]] \
  || fail "PEFT_PROGRESS_SECONDS=0 should give a line per 10 %: $pct"

# Not a results file: exit status 2 with the reason.
echo hello > notes.h5
set +e
STATUS notes.h5 > bad.txt 2>&1; rc=$?
set -e
[[ $rc == 2 ]] && grep -q "not a peft-sweep results file" bad.txt || fail "status on a non-results file: rc $rc, $(cat bad.txt)"
echo "--- status of the running sweep:"
cat status-running.txt
echo "watch_status: ok"
