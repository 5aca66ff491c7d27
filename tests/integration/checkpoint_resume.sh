#!/usr/bin/env bash
# Mid-trial checkpoints at dp = 2 under mpirun: a trial stopped by SIGTERM, and one whose rank
# is SIGKILLed, each continue with --resume from their last checkpoint and end bitwise where an
# uninterrupted run ends: every metric but the timings, every curve, the saved PEFT adapters.
# The interrupted trial is recorded as such, with its step; a complete trial's checkpoints go.
source "$(dirname "$0")/common.sh"
cat > s.toml <<TOML
[sweep]
name = "ck"
dp = 2
seeds = [1]
save_adapters = true

[model]
preset = "tiny"
cache_dir = "$WORK/.cache"

[train]
max_steps = 40
batch_size = 16
lr = 2e-3
eval_every = 10
checkpoint_every = 5
inference_batch = 16
inference_repeats = 1

[method]
rank = 4
dropout = 0.1

[grid]
method = ["sparse_lora", "lora"]
dataset = "synthetic_sentiment"

[methods.sparse_lora]
sparsity = 0.5
prune_start = 0.2
prune_end = 0.8
prune_every = 2

[datasets.synthetic_sentiment]
synthetic_train = 320
synthetic_eval = 64
TOML

# The reference: no interruption (checkpoints written all the same, then removed).
mpi 2 "$BIN/peft-sweep" s.toml --output ref.h5 > ref.log 2>&1 || { cat ref.log; fail "reference run failed"; }
[[ $(complete_count ref.h5) == 2 ]] || fail "reference: expected 2 complete trials"
[[ -z $(ls -A ref.checkpoints 2>/dev/null) ]] || fail "checkpoints of complete trials left in ref.checkpoints: $(ls ref.checkpoints)"

# 1. SIGTERM to rank 1 at step 17: the group stops at the same step, the trial is recorded
#    interrupted with its step, and the checkpoint of step 15 is kept.
set +e
PEFT_TEST_FAULT="rank=1,step=17,what=stop" mpi 2 "$BIN/peft-sweep" s.toml --output a.h5 > a1.log 2>&1
rc=$?
set -e
[[ $rc == 130 ]] || { cat a1.log; fail "stopped run: exit $rc, expected 130"; }
read -r first istep < <(/usr/bin/python3 - <<'PY'
import glob, h5py
for p in ["a.h5"] + glob.glob("a.h5.part-g*.h5"):
    with h5py.File(p, "r") as f:
        for k, g in f["trials"].items():
            s = g.attrs["status"]; s = s.decode() if isinstance(s, bytes) else s
            if s == "interrupted":
                print(k, int(g.attrs["interrupted_step"]))
PY
)
[[ -n ${first:-} ]] || { cat a1.log; fail "no trial recorded as interrupted"; }
((istep >= 17 && istep <= 19)) || fail "interrupted_step $istep, expected the step of the signal (17-19)"
[[ $(cat "a.checkpoints/$first/latest") == 15 ]] || fail "latest checkpoint $(cat a.checkpoints/$first/latest 2>/dev/null), expected 15"
PEFT_LOG_LEVEL=info mpi 2 "$BIN/peft-sweep" s.toml --output a.h5 --resume > a2.log 2>&1 || { cat a2.log; fail "resume after SIGTERM failed"; }
grep -q "continuing from its checkpoint at step 15/40" a2.log || { cat a2.log; fail "the resumed trial did not continue from step 15"; }

# 2. SIGKILL of rank 0 at step 23 (a lost node): mpirun ends the job; the last checkpoint is 20.
set +e
PEFT_TEST_FAULT="rank=0,step=23,what=kill" mpi 2 "$BIN/peft-sweep" s.toml --output b.h5 > b1.log 2>&1
rc=$?
set -e
[[ $rc != 0 ]] || fail "killed run exited 0"
ck=$(ls b.checkpoints)
[[ $(cat "b.checkpoints/$ck/latest") == 20 ]] || fail "latest checkpoint after the kill: $(cat b.checkpoints/$ck/latest 2>/dev/null), expected 20"
PEFT_LOG_LEVEL=info mpi 2 "$BIN/peft-sweep" s.toml --output b.h5 --resume > b2.log 2>&1 || { cat b2.log; fail "resume after SIGKILL failed"; }
grep -q "continuing from its checkpoint at step 20/40" b2.log || { cat b2.log; fail "the resumed trial did not continue from step 20"; }

for run in a b; do
  [[ $(complete_count $run.h5) == 2 ]] || fail "$run: expected 2 complete trials after --resume"
  [[ -z $(ls -A $run.checkpoints 2>/dev/null) ]] || fail "$run: checkpoints left after the trials completed"
  /usr/bin/python3 - ref.h5 $run.h5 <<'PY' || fail "$run: the resumed results differ from the uninterrupted run"
import sys, h5py, numpy as np
timing = ("seconds", "per_second", "inference_ms", "memory", "checkpoints_written", "resumed_from_step", "merge_max_abs_diff")
with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "r") as b:
    assert sorted(a["trials"]) == sorted(b["trials"]), "different trial ids"
    for k in a["trials"]:
        ga, gb = a["trials"][k], b["trials"][k]
        for name, v in ga["metrics"].attrs.items():
            if any(t in name for t in timing): continue
            w = gb["metrics"].attrs[name]
            assert (np.isnan(v) and np.isnan(w)) or v == w, f"{k} metric {name}: {v!r} vs {w!r}"
        for grp in ("train", "eval"):
            for ds in ga[grp]:
                x, y = ga[grp][ds][()], gb[grp][ds][()]
                assert x.shape == y.shape and np.array_equal(x, y, equal_nan=True), f"{k} {grp}/{ds} differs"
    print("bitwise equal:", sorted(a["trials"]))
PY
  for d in ref.adapters/*/; do
    id=$(basename "$d")
    cmp -s "$d/adapter_model.safetensors" "$run.adapters/$id/adapter_model.safetensors" || fail "$run: adapter $id differs"
  done
done
echo "checkpoint_resume: ok (SIGTERM at step 17 → resumed from 15; SIGKILL at step 23 → resumed from 20; bitwise equal)"
