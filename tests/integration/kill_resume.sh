#!/usr/bin/env bash
# SIGKILL half-way, then --resume: a complete file whose committed trials are unchanged.
source "$(dirname "$0")/common.sh"
write_sweep s.toml "1, 2, 3" 60 1
PEFT_LOG_LEVEL=info mpirun -np 2 --oversubscribe "$BIN/peft-sweep" s.toml > run1.log 2>&1 &
pid=$!
# Wait until a group leader reports a committed trial (it logs after write_trial returns;
# the part file itself is locked by its writer), then kill everything.
n=0
for i in $(seq 1 1500); do
  n=$(grep -c "\] trial [0-9a-f]* (.*) .* in [0-9.]*s" run1.log || true)
  ((n >= 1)) && break
  sleep 0.2
done
((n >= 1)) || { cat run1.log; fail "no trial committed before the kill"; }
pkill -KILL -f "peft-sweep s.toml" || true
kill -KILL $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
committed=$(/usr/bin/python3 - <<'PY'
import glob, h5py
ids = []
for p in glob.glob("out.h5.part-g*.h5"):
    with h5py.File(p, "r") as f:
        ids += [k for k in f["trials"] if f["trials"][k].attrs["status"] in (b"complete", "complete")]
print(" ".join(sorted(ids)))
PY
)
for id in $committed; do
  for p in out.h5.part-g*.h5; do h5dump -g "/trials/$id/metrics" "$p" 2>/dev/null | grep -v "^HDF5\|FILE\|GROUP \"/\"" > "before-$id.txt" && [[ -s before-$id.txt ]] && break; done
done
mpirun -np 2 --oversubscribe "$BIN/peft-sweep" s.toml --resume > run2.log 2>&1 || { cat run2.log; fail "resume failed"; }
[[ $(complete_count out.h5) == 6 ]] || fail "expected 6 complete trials after resume"
ls out.h5.part-g*.h5 >/dev/null 2>&1 && fail "part files left behind"
for id in $committed; do
  h5dump -g "/trials/$id/metrics" out.h5 | grep -v "^HDF5\|FILE\|GROUP \"/\"" > "after-$id.txt"
  diff -q "before-$id.txt" "after-$id.txt" >/dev/null || fail "committed trial $id changed on resume"
done
echo "kill_resume: ok ($(echo $committed | wc -w) trials committed before the kill)"
