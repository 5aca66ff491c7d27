#!/usr/bin/env bash
# dp=2 with global batch 2b trains the same adapters as one rank with batch 2b: LoRA, QLoRA and
# Sparse LoRA with an L1 penalty and pruning, over 30 steps (warm-up, decay and clipping
# included). The dp=2 run also takes QLoRA's AdamW states paged (host-resident), which must not
# change the update either.
source "$(dirname "$0")/common.sh"
for dp in 1 2; do
  write_sweep s$dp.toml 1 30 $dp
  sed -i "s|^output = .*|output = \"$WORK/dp$dp.h5\"|; s|^batch_size = 16|batch_size = 16\nsave_adapter = true\nadapter_dir = \"$WORK/adapters-dp$dp\"|; s|^method = .*|method = [\"lora\", \"qlora\", \"sparse_lora\"]\nsparsity = 0.5|" s$dp.toml
  printf '\n[methods.sparse_lora]\nl1 = 1e-3\nprune_start = 0.2\nprune_end = 0.6\nprune_every = 2\n' >> s$dp.toml
  if [ $dp = 2 ]; then printf '\n[methods.qlora]\noptimizer = "paged_adamw"\n' >> s$dp.toml; fi
  mpi $dp "$BIN/peft-sweep" s$dp.toml > log$dp 2>&1 || { cat log$dp; fail "dp=$dp run failed"; }
done
/usr/bin/python3 - "$WORK" <<'PY'
import json, struct, sys
import h5py
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
def text(v): return v.decode() if isinstance(v, bytes) else v
w = sys.argv[1]
def adapters(dp):
    with h5py.File(f"{w}/dp{dp}.h5", "r") as f:
        out = {}
        for tid, t in f["trials"].items():
            assert text(t.attrs["status"]) == "complete", (dp, tid, text(t.attrs["error"]))
            m = text(t.attrs["method.name"])
            out[m] = (load(f"{w}/adapters-dp{dp}/{tid}/adapter_model.safetensors"), t["metrics"].attrs["optimizer_host_bytes"])
        return out
one, two = adapters(1), adapters(2)
assert one.keys() == two.keys() == {"lora", "qlora", "sparse_lora"}, (one.keys(), two.keys())
for m in ("lora", "qlora", "sparse_lora"):
    a, b = one[m][0], two[m][0]
    assert a.keys() == b.keys(), (a.keys(), b.keys())
    worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    moved = max(float(np.abs(a[k]).max()) for k in a if "lora_B" in k)
    print(f"{m}: max |dp1 - dp2| = {worst:.3g} over {len(a)} tensors after 30 steps; max |lora_B| = {moved:.3g}")
    assert moved > 1e-4, "training did not move lora_B"
    assert worst <= 1e-5 * max(1.0, moved), f"{m}: dp=2 differs from dp=1"
    if m == "sparse_lora":
        zeros = [float((a[k] == 0).mean()) for k in a if "lora_" in k]
        same = all(np.array_equal(a[k] == 0, b[k] == 0) for k in a)
        print(f"sparse_lora: sparsity per matrix {min(zeros):.3f}-{max(zeros):.3f}, same masks at dp=1 and dp=2: {same}")
        assert min(zeros) >= 0.49 and same, "pruning differs between dp=1 and dp=2"
assert one["qlora"][1] == 0 and two["qlora"][1] > 0, "paged states not reported in host memory"
PY
echo "dp_equivalence: ok"
