"""One sweep trained twice, by peft-sweep and by transformers + peft (bench/hf_reference.py),
with the same draws and no dropout: the two must train the same model.

The base is a small random BERT written by transformers' save_pretrained with every dropout at
0 (a BertModel file: the pooler comes from the file, the classifier and the MLM head are fresh,
as with all-MiniLM-L6-v2); its tokenizer is saved by transformers too. The data are written
here in the official layouts (SST-2's train.tsv / dev.tsv, WikiText-2's wiki.*.tokens). The
sweep runs LoRA, Sparse LoRA (pruned on a schedule), HiRA, full fine-tuning and the head alone
(and QLoRA where bitsandbytes' CPU backend runs it) on both data sets, adapter dropout 0.

hf_reference's default draws are peft-sweep's (bench/sweep_draws.py): batch order, MLM training
masks, the adapters' A and the fresh heads. With dropout off nothing else is random, so each
step's training loss must agree to float rounding (different BLAS, different kernels), and so
must the final accuracy and perplexity. This is the training step — forward, loss, backward,
clipping, AdamW with two parameter groups, the warm-up schedule, Sparse LoRA's pruning — checked
end to end against the libraries the study compares with.
"""
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from interop_common import SRC, Checks, run, tool, vocab_file

STEP_TOL = 1e-5    # relative, per step's training loss, over up to 20 AdamW steps (seen: <= 3.1e-7)
METRIC_TOL = 1e-4  # relative perplexity (seen: <= 1.3e-6); accuracy: equal up to one example
APART = 1e-4       # each method's curve must leave the head-only curve by this much (relative), ten
                   # times the tolerance: a method whose own updates were wrong or missing fails

WORDS_POS = [f"tok{i}" for i in range(10, 20)]
WORDS_NEG = [f"tok{i}" for i in range(20, 30)]
WORDS_NEUTRAL = [f"tok{i}" for i in range(30, 90)]


def sentences(n, seed):
    import random
    r = random.Random(seed)
    rows = []
    for _ in range(n):
        label = r.randrange(2)
        k = r.randrange(4, 12)
        words = [r.choice(WORDS_NEUTRAL) for _ in range(k)]
        for _ in range(r.randrange(1, 3)):
            words.insert(r.randrange(len(words) + 1), r.choice(WORDS_POS if label else WORDS_NEG))
        rows.append((" ".join(words), label))
    return rows


def write_data(root):
    sst = root / "SST-2"
    sst.mkdir()
    for split, n, seed in (("train", 160, 1), ("dev", 40, 2)):
        with open(sst / f"{split}.tsv", "w") as f:
            f.write("sentence\tlabel\n")
            for text, label in sentences(n, seed):
                f.write(f"{text} \t{label}\n")
    wiki = root / "wikitext-2"
    wiki.mkdir()
    for split, n, seed in (("train", 240, 3), ("valid", 40, 4), ("test", 10, 5)):
        lines = [" " + text + " . " for text, _ in sentences(n, seed)]
        (wiki / f"wiki.{split}.tokens").write_text("\n".join(lines) + "\n")


def write_base(d):
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer
    # Widths that are multiples of 64: bitsandbytes' CPU 4-bit matmul asserts on others.
    cfg = BertConfig(vocab_size=200, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                     max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    model = BertModel(cfg)
    with torch.no_grad():  # a pooler and LayerNorms that are not the init's 0 / 1
        for name, p in model.named_parameters():
            if "LayerNorm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.normal_(0, 0.02)
    model.save_pretrained(d, safe_serialization=True)
    vocab_file(d / "vocab.txt", cfg.vocab_size)
    # transformers 5's BertTokenizer takes the vocabulary itself (it ignores vocab_file=, and
    # save_pretrained would then write a vocab.txt of the five special tokens).
    words = (d / "vocab.txt").read_text().split("\n")[:cfg.vocab_size]
    tok = BertTokenizer(vocab={w: i for i, w in enumerate(words)}, do_lower_case=True)
    assert len(tok) == cfg.vocab_size, len(tok)
    tok.save_pretrained(d)
    assert (d / "vocab.txt").read_text().split() == words, "save_pretrained rewrote vocab.txt"


SWEEP = """
[sweep]
name = "parity"
output = "{out}"
dp = 1
seeds = [1, 2]

[model]
checkpoint = "{base}"

[train]
epochs = 1
batch_size = 8
lr = 3e-2
head_lr = 2e-2
warmup_ratio = 0.1
weight_decay = 0.01
max_grad_norm = 1.0
inference_batch = 8
inference_repeats = 1

[grid]
method = {methods}
rank = 4
sparsity = 0.5
dataset = ["sst2", "wikitext2"]

[method]
alpha = 8
dropout = 0.0
targets = ["query", "value"]

[methods.sparse_lora]
prune_start = 0.2
prune_end = 0.7
prune_every = 2

[methods.hira]
lr = 0.3

[methods.full]
lr = 3e-3

[datasets.sst2]
path = "{data}/SST-2"
max_length = 24

[datasets.wikitext2]
path = "{data}/wikitext-2"
block_size = 16
max_train = 128
max_eval = 24
"""

H5_DUMP = r"""
import h5py, json, sys
out = []
with h5py.File(sys.argv[1], "r") as f:
    for tid, g in f["trials"].items():
        a = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in g.attrs.items()}
        m = {k: float(v) for k, v in g["metrics"].attrs.items()} if "metrics" in g else {}
        out.append({"method": str(a["method.name"]), "dataset": str(a["dataset.name"]),
                    "seed": int(a.get("seed")), "status": str(a.get("status")),
                    "losses": [float(x) for x in g["train"]["loss"][()]], "metrics": m})
print(json.dumps(out))
"""


def main():
    c = Checks("interop.training_parity")
    sweep_bin = tool("peft-sweep")
    if not Path("/usr/bin/python3").exists():
        print("interop: /usr/bin/python3 (Debian's, with h5py) is needed to read the results file")
        sys.exit(77)
    try:
        import bitsandbytes  # noqa: F401
        methods = ["lora", "sparse_lora", "hira", "qlora", "full", "head"]
    except Exception as e:  # pragma: no cover - the pinned environment has it
        print(f"  (qlora left out: bitsandbytes does not import: {e})")
        methods = ["lora", "sparse_lora", "hira", "full", "head"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = tmp / "base"
        base.mkdir()
        write_base(base)
        write_data(tmp)
        sweep = tmp / "parity.toml"
        sweep.write_text(SWEEP.format(out=tmp / "parity.h5", base=base, data=tmp, methods=json.dumps(methods)))
        env = dict(os.environ, OMP_NUM_THREADS="1")
        r = subprocess.run([sweep_bin, str(sweep)], capture_output=True, text=True, env=env, cwd=tmp)
        if r.returncode != 0:
            print(r.stdout[-3000:], r.stderr[-3000:])
            c.check(False, f"peft-sweep exited {r.returncode}")
            c.finish()
        ours = json.loads(run(["/usr/bin/python3", "-c", H5_DUMP, tmp / "parity.h5"]))
        ref_csv = tmp / "hf.csv"
        run([sys.executable, SRC / "bench" / "hf_reference.py", sweep, "--out", ref_csv, "--no-floors", "--jobs", "2",
             "--threads", "1"])
        refs = json.loads(ref_csv.with_suffix(".json").read_text())
        by_key = {(r["dataset"], r["method"], int(r["seed"])): r for r in refs}
        c.check(len(ours) == len(methods) * 4, f"peft-sweep ran {len(ours)} trials ({len(methods)} methods x 2 data sets x 2 seeds)")
        worst_step, worst_metric = 0.0, 0.0
        head = {(o["dataset"], o["seed"]): o["losses"] for o in ours if o["method"] == "head"}
        for o in sorted(ours, key=lambda o: (o["dataset"], o["method"], o["seed"])):
            key = (o["dataset"], o["method"], o["seed"])
            name = "/".join(map(str, key))
            ref = by_key.get(key)
            if ref is None or ref.get("status") != "complete" or o["status"] != "complete":
                c.check(False, f"{name}: peft-sweep {o['status']}, reference {ref and ref.get('status')} {ref and ref.get('note')}")
                continue
            la, lb = o["losses"], ref["train_losses"]
            if not c.check(len(la) == len(lb), f"{name}: {len(la)} logged steps, reference {len(lb)}"):
                continue
            err = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(la, lb))
            worst_step = max(worst_step, err)
            c.check(err <= STEP_TOL, f"{name}: per-step training loss, largest relative difference {err:.2e} over {len(la)} steps "
                                     f"(first {la[0]:.6f} / {lb[0]:.6f}, last {la[-1]:.6f} / {lb[-1]:.6f})")
            if o["dataset"] == "wikitext2":
                pa, pb = o["metrics"]["perplexity"], ref["perplexity"]
                e = abs(pa - pb) / pb
                worst_metric = max(worst_metric, e)
                c.check(e <= METRIC_TOL, f"{name}: perplexity {pa:.4f} / {pb:.4f} (relative {e:.2e})")
            else:
                aa, ab = o["metrics"]["accuracy"], ref["accuracy"]
                c.check(abs(aa - ab) <= 1 / 40 + 1e-9, f"{name}: accuracy {aa:.4f} / {ab:.4f}")
            if o["method"] != "head" and (o["dataset"], o["seed"]) in head:
                h = head[(o["dataset"], o["seed"])]
                apart = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(la, h))
                c.check(apart >= APART, f"{name}: its curve leaves the head-only one by {apart:.2e} (>= {APART:g}: the method's own updates are tested)")
            if o["method"] in ("lora", "sparse_lora", "hira", "qlora"):
                c.check(ref.get("adapters_initialised") == 4, f"{name}: the reference re-drew {ref.get('adapters_initialised')} adapters (4)")
        print(f"  largest per-step loss difference {worst_step:.2e}, largest perplexity difference {worst_metric:.2e}")
    c.finish()


if __name__ == "__main__":
    main()
