#!/usr/bin/env bash
# dp=2 with global batch 2b gives the same adapter after one step as one rank with batch 2b.
source "$(dirname "$0")/common.sh"
for dp in 1 2; do
  write_sweep s$dp.toml 1 1 $dp
  sed -i "s|^output = .*|output = \"$WORK/dp$dp.h5\"|; s|^batch_size = 16|batch_size = 16\nsave_adapter = true\nadapter_dir = \"$WORK/adapters-dp$dp\"\nwarmup_ratio = 0.0|; s|^method = .*|method = \"lora\"|" s$dp.toml
  mpi $dp "$BIN/peft-sweep" s$dp.toml > log$dp 2>&1 || { cat log$dp; fail "dp=$dp run failed"; }
done
/usr/bin/python3 - "$WORK" <<'PY'
import glob, json, struct, sys
import numpy as np
def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n)); buf = f.read()
    out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        b, e = v["data_offsets"]
        out[k] = np.frombuffer(buf[b:e], dtype=np.float32).reshape(v["shape"])
    return out
w = sys.argv[1]
a = load(glob.glob(f"{w}/adapters-dp1/*/adapter_model.safetensors")[0])
b = load(glob.glob(f"{w}/adapters-dp2/*/adapter_model.safetensors")[0])
assert a.keys() == b.keys(), (a.keys(), b.keys())
worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
moved = max(float(np.abs(a[k]).max()) for k in a if "lora_B" in k)
print(f"max |dp1 - dp2| = {worst:.3g} over {len(a)} tensors; max |lora_B| after one step = {moved:.3g}")
assert moved > 0, "the step did not change lora_B"
assert worst <= 1e-6, "dp=2 differs from dp=1"
PY
echo "dp_equivalence: ok"
