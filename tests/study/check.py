#!/usr/bin/python3
"""Checks of a real-data study's results file (tests/study/quick.sh runs it).

    tests/study/check.py RESULTS.h5 SWEEP.toml

What a correct run of the sweep on all-MiniLM-L6-v2 must show, whatever the seed:
- every trial of the sweep file is in the results and complete, with the steps the caps give
  (one epoch over max_train examples at the global batch);
- SST-2 (872 dev sentences, majority class 0.509): LoRA, Sparse LoRA, QLoRA and full
  fine-tuning beat the majority class by 15 points or more (they reach 0.74-0.79 on seeds 1-3;
  a broken forward, loader or optimizer stays at 0.509), HiRA and head-only by more than 1
  point (0.54-0.60: HiRA's W0 * BA update and the head on all-MiniLM-L6-v2's untrained pooler
  learn slowly in 100 steps);
- WikiText-2: every perplexity is finite and below the vocabulary size (a uniform guess), and
  LoRA's is below head-only's (the adapters add to what the fresh MLM head learns alone);
- Sparse LoRA reaches its target sparsity; QLoRA holds its base in NF4 (smaller model bytes
  than LoRA's); a merged LoRA adapter gives the unmerged outputs; trainable parameters order
  head < LoRA < full.
Exit 0 when all hold, 1 with one line per failure otherwise.
"""
import math
import os
import sys
import tomllib

os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")
import h5py  # noqa: E402

SST2_MAJORITY = 0.509   # 444 of 872 dev sentences are positive
SST2_MARGIN = {"lora": 0.15, "sparse_lora": 0.15, "qlora": 0.15, "full": 0.15, "hira": 0.01, "head": 0.01}
VOCAB = 30522


def text(v):
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def main(results, sweep_path):
    with open(sweep_path, "rb") as f:
        sweep = tomllib.load(f)
    grid = sweep["grid"]
    as_list = lambda v: v if isinstance(v, list) else [v]  # noqa: E731
    methods, datasets = as_list(grid["method"]), as_list(grid["dataset"])
    seeds = as_list(grid.get("seed", sweep["sweep"].get("seeds", [1])))
    batch = sweep["train"]["batch_size"]
    epochs = sweep["train"].get("epochs", 3)
    failures = []

    def check(ok, what):
        print(("ok    " if ok else "FAIL  ") + what)
        if not ok:
            failures.append(what)

    rows = {}
    with h5py.File(results, "r") as f:
        for tid, g in f["trials"].items():
            a = g.attrs
            key = (text(a["method.name"]), text(a["dataset.name"]), int(float(text(a["seed"]))))
            rows[key] = {"status": text(a["status"]), "error": text(a.get("error", "")),
                         **{k: float(v) for k, v in g["metrics"].attrs.items()}}
    want = [(m, d, s) for d in datasets for m in methods for s in seeds]
    check(len(rows) == len(want), f"{len(rows)} trials in the results, the sweep has {len(want)}")
    for key in want:
        r = rows.get(key)
        if r is None:
            check(False, f"{key}: missing")
            continue
        if r["status"] != "complete":
            check(False, f"{key}: {r['status']} {r['error']}")
            continue
        ds = sweep["datasets"][key[1]]
        steps = epochs * (ds["max_train"] // batch if key[1] == "wikitext2" else
                          math.ceil(ds["max_train"] / batch))
        if r.get("train_steps") != steps:
            check(False, f"{key}: {r.get('train_steps')} steps, expected {steps}")
    check(all(r["status"] == "complete" for r in rows.values()), "every trial complete")

    def metric(m, d, s, name):
        return rows.get((m, d, s), {}).get(name, math.nan)

    for s in seeds:
        if "sst2" in datasets:
            for m in methods:
                acc, floor = metric(m, "sst2", s, "accuracy"), SST2_MAJORITY + SST2_MARGIN[m]
                check(acc > floor, f"sst2 {m} seed {s}: accuracy {acc:.4f} > {floor:.3f}")
        if "wikitext2" in datasets:
            for m in methods:
                ppl = metric(m, "wikitext2", s, "perplexity")
                check(math.isfinite(ppl) and 1.0 < ppl < VOCAB,
                      f"wikitext2 {m} seed {s}: perplexity {ppl:.1f} in (1, {VOCAB})")
            if {"lora", "head"} <= set(methods):
                lo, hd = metric("lora", "wikitext2", s, "perplexity"), metric("head", "wikitext2", s, "perplexity")
                check(lo < hd, f"wikitext2 seed {s}: LoRA perplexity {lo:.1f} < head-only's {hd:.1f}")
        for d in datasets:
            if "sparse_lora" in methods:
                target = sweep.get("methods", {}).get("sparse_lora", {}).get("sparsity",
                                                                            grid.get("sparsity"))
                got = metric("sparse_lora", d, s, "adapter_sparsity")
                check(abs(got - target) <= 0.02,
                      f"{d} sparse_lora seed {s}: adapter sparsity {got:.3f} ~ target {target}")
            if {"qlora", "lora"} <= set(methods):
                q, l = metric("qlora", d, s, "model_bytes"), metric("lora", d, s, "model_bytes")
                check(q < 0.8 * l, f"{d} seed {s}: QLoRA model bytes {q:.0f} < 0.8 x LoRA's {l:.0f}")
            if "lora" in methods:
                diff = metric("lora", d, s, "merge_max_abs_diff")
                check(diff < 1e-3, f"{d} lora seed {s}: merged vs unmerged max |diff| {diff:.2e} < 1e-3")
            if {"head", "lora", "full"} <= set(methods):
                h, l, fu = (metric(m, d, s, "trainable_params") for m in ("head", "lora", "full"))
                check(h < l < fu, f"{d} seed {s}: trainable parameters head {h:.0f} < LoRA {l:.0f} < full {fu:.0f}")
    if failures:
        print(f"study check: {len(failures)} failed", file=sys.stderr)
        return 1
    print("study check: all passed")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
