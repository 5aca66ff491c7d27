#!/usr/bin/env python3
"""The trials of a peft-sweep sweep file, run with Hugging Face transformers + peft.

The same base checkpoint, data files and caps, tokenisation (the checkpoint's tokenizer.json,
truncation to max_length), MLM blocks ([CLS] + block_size-2 word pieces + [SEP], non-blank
lines concatenated) and masking (15 %, 80/10/10; evaluation masked once with a fixed seed),
hyperparameters (steps, global batch, learning rates, head learning rate, warm-up, weight decay
off for biases and LayerNorm, gradient clipping), targets and seeds as peft-sweep's trial
runner.

Random draws (--draws): by default ("peft-sweep") a trial uses the draws of the peft-sweep trial
with the same seed (bench/sweep_draws.py): the same batch order, the same MLM training masks, the
same initial adapter factors (A; B is zero) and the same fresh head. What still differs between
the two runs of one trial are the dropout masks (each side's own kernels) and floating-point
rounding, so a difference in a seed's result is the implementations' and dropout's, not a
different draw of data order and initialisation. With dropout 0 the two runs train the same
model (tests/interop/test_training_parity.py). "--draws torch" draws them from torch's own
generators instead (the order and initialisation of a plain transformers script), so single
trials differ by seed noise and only means over seeds compare.

Methods:
  lora, hira      peft's LoraConfig / HiraConfig (HiRA: peft has no hira_scale; a sweep
                  with hira_scale != 1 is flagged in the output).
  sparse_lora     peft has none: LoRA plus the same Zhu & Gupta cubic magnitude pruning of
                  each lora_A / lora_B (unstructured, masks kept), done here.
  qlora           bitsandbytes 4-bit NF4 + double quantisation (compute float32) through
                  transformers' BitsAndBytesConfig; where bitsandbytes' CPU backend cannot
                  load or train it, the trial's row says why (status "unsupported").
  full, head      every parameter / only the task head.
Heads follow PEFT: for classification only `classifier` is trained with the adapters (the
pooler stays frozen); for MLM on a base without an MLM head (a BertModel checkpoint), the fresh
cls.predictions.transform and cls.predictions.bias are trained, as peft-sweep does.

Also writes a bag-of-words logistic-regression floor for each classification data set
(unigram log-counts, L2, full-batch gradient descent; numpy only) and a unigram floor for MLM
(the perplexity of predicting every masked word piece from the training unigram frequencies).

Each trial runs in its own process (clean peak-memory figures: the process's peak RSS).

  .cache/interop-venv/bin/python bench/hf_reference.py sweeps/real-cpu-quick.toml \\
      --out results/hf-real-cpu-quick.csv [--jobs 2] [--threads 1] [--only lora,head]
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import resource
import subprocess
import sys
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sweep_draws  # noqa: E402  (bench/sweep_draws.py: peft-sweep's draws)

ADAPTER_METHODS = {"lora", "sparse_lora", "hira", "qlora"}
TRAIN_KEYS = ["epochs", "max_steps", "batch_size", "lr", "head_lr", "weight_decay", "warmup_ratio", "max_grad_norm"]
TRAIN_DEFAULTS = {"epochs": 3, "max_steps": 0, "batch_size": 32, "lr": 3e-4, "head_lr": 0.0, "weight_decay": 0.01,
                  "warmup_ratio": 0.06, "max_grad_norm": 1.0}
METHOD_DEFAULTS = {"rank": 8, "alpha": 16.0, "dropout": 0.0, "targets": ["q_lin", "v_lin"], "hira_scale": 1.0,
                   "sparsity": 0.0, "prune_schedule": "cubic", "prune_start": 0.1, "prune_end": 0.6, "prune_every": 50,
                   "compute_dtype": "float32"}
DATASET_DEFAULTS = {"max_length": 128, "block_size": 128, "max_train": 0, "max_eval": 0}


# ----------------------------------------------------------------------------- sweep expansion

def as_list(v):
    return v if isinstance(v, list) else [v]


def expand(sweep_path: str) -> tuple[dict, list[dict]]:
    with open(sweep_path, "rb") as f:
        cfg = tomllib.load(f)
    base = cfg["model"]["checkpoint"]
    seeds = as_list(cfg.get("grid", {}).get("seed", cfg.get("sweep", {}).get("seeds", [1])))
    grid = cfg["grid"]
    trials = []
    for ds in as_list(grid["dataset"]):
        for method in as_list(grid["method"]):
            ranks = as_list(grid.get("rank", METHOD_DEFAULTS["rank"])) if method in ADAPTER_METHODS else [None]
            sparsities = as_list(grid.get("sparsity", 0.0)) if method == "sparse_lora" else [None]
            for rank in ranks:
                for sp in sparsities:
                    for seed in seeds:
                        t = {"base": base, "dataset": ds, "method": method, "seed": int(seed),
                             "shards": int(cfg.get("sweep", {}).get("dp", 1)) * int(cfg.get("train", {}).get("grad_accum", 1))}
                        train = dict(TRAIN_DEFAULTS)
                        train.update({k: v for k, v in cfg.get("train", {}).items() if k in TRAIN_KEYS})
                        m = dict(METHOD_DEFAULTS)
                        m.update(cfg.get("method", {}))
                        per = cfg.get("methods", {}).get(method, {})
                        train.update({k: v for k, v in per.items() if k in TRAIN_KEYS})
                        m.update({k: v for k, v in per.items() if k not in TRAIN_KEYS})
                        if rank is not None:
                            m["rank"] = int(rank)
                        if sp is not None:
                            m["sparsity"] = float(sp)
                        d = dict(DATASET_DEFAULTS)
                        d.update(cfg["datasets"][ds])
                        t.update(train=train, method_cfg=m, data=d)
                        t["name"] = f"{ds}/{method}" + (f"/r{rank}" if rank else "") + (f"/s{sp}" if sp else "") + f"/seed{seed}"
                        trials.append(t)
    return cfg, trials


# ----------------------------------------------------------------------------- data (as src/data)

def read_sst2(path, split, cap):
    rows = []
    with open(Path(path) / f"{split}.tsv", encoding="utf-8") as f:
        next(f)
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            text, label = line.rsplit("\t", 1)
            rows.append((text, int(label)))
            if cap and len(rows) >= cap:
                break
    return rows


def read_imdb(path, split, cap):
    root = Path(path)
    if (root / "aclImdb").is_dir():
        root = root / "aclImdb"

    def listing(sub):
        files = []
        for p in (root / split / sub).iterdir():
            m = re.fullmatch(r"(\d+)_(\d+)\.txt", p.name)
            if m:
                files.append((int(m.group(1)), str(p), p))
        files.sort()
        return [p for _, _, p in files]

    neg, pos = listing("neg"), listing("pos")
    if cap:
        want_pos, want_neg = (cap + 1) // 2, cap // 2
        if len(pos) < want_pos:
            want_neg += want_pos - len(pos)
        if len(neg) < want_neg:
            want_pos += want_neg - len(neg)
        pos, neg = pos[:want_pos], neg[:want_neg]
    rows = []
    for i in range(max(len(neg), len(pos))):
        if i < len(neg):
            rows.append((neg[i].read_text(encoding="utf-8"), 0))
        if i < len(pos):
            rows.append((pos[i].read_text(encoding="utf-8"), 1))
    return rows


def mlm_blocks(path, split, tok, block_size, cap):
    import torch
    lines = [l for l in Path(path, f"wiki.{split}.tokens").read_text(encoding="utf-8").split("\n") if l.strip()]
    need = cap * (block_size - 2) if cap else None
    ids = []
    chunk = 256
    for i in range(0, len(lines), chunk):
        for enc in tok(lines[i:i + chunk], add_special_tokens=False)["input_ids"]:
            ids.extend(enc)
        if need and len(ids) >= need:
            break
    n = len(ids) // (block_size - 2)
    if cap:
        n = min(n, cap)
    body = torch.tensor(ids[:n * (block_size - 2)], dtype=torch.long).view(n, block_size - 2)
    cls = torch.full((n, 1), tok.cls_token_id, dtype=torch.long)
    sep = torch.full((n, 1), tok.sep_token_id, dtype=torch.long)
    return torch.cat([cls, body, sep], 1)


EVAL_MASK_SEED = 1234  # peft-sweep's DatasetSpec::eval_mask_seed


def mask_tokens(blocks, tok, gen):
    """peft-sweep's masking rule, op for op (src/data/mlm_masking.cpp), so that with the same
    seed both sides draw the same masks: torch's CPU generator gives the same stream in
    LibTorch 1.13 and torch 2.x. Eligible: ordinary tokens (ids from the first one that is not
    [bracketed], 999 in BERT's vocabulary); 15 % of them are selected; one uniform draw then
    decides the fate of each selected token: < 0.8 [MASK], < 0.9 a random ordinary token,
    else kept."""
    import torch
    low = random_low(tok)
    eligible = blocks >= low
    for s in (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id):
        if s is not None and s >= low:
            eligible &= blocks != s
    selected = (torch.rand(blocks.shape, generator=gen) < 0.15) & eligible
    fate = torch.rand(blocks.shape, generator=gen)
    to_mask = (fate < 0.8) & selected
    to_random = (fate >= 0.8) & (fate < 0.9) & selected
    random_ids = torch.randint(low, len(tok), blocks.shape, generator=gen)
    labels = blocks.masked_fill(~selected, -100)
    inputs = blocks.masked_fill(to_mask, tok.mask_token_id)
    inputs = torch.where(to_random, random_ids, inputs)
    return inputs, labels


_RANDOM_LOW = {}


def random_low(tok):
    """The first id that is not a [bracketed] token: peft-sweep's MaskingOptions::random_low."""
    if id(tok) in _RANDOM_LOW:
        return _RANDOM_LOW[id(tok)]
    ids = tok.convert_ids_to_tokens(list(range(len(tok))))
    low = 0
    while low < len(ids) and len(ids[low]) > 2 and ids[low][0] == "[" and ids[low][-1] == "]":
        low += 1
    _RANDOM_LOW[id(tok)] = low
    return low


def require_bert_family(base):
    """The heads, their parameter groups and the fresh-head detection below use BERT's module
    names (classifier on the pooler; cls.predictions for MLM), as all-MiniLM-L6-v2 has them. A
    DistilBERT base (pre_classifier + classifier, vocab_transform) would be trained with the
    wrong head, so it is refused rather than compared."""
    cfg = json.loads((Path(base) / "config.json").read_text())
    if cfg.get("model_type") != "bert":
        sys.exit(f"hf_reference: {base}/config.json has model_type {cfg.get('model_type')!r}; the reference runs BERT-family "
                 f"bases only (model_type \"bert\"), whose head names it follows")


def load_task(t):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(t["base"])
    d = t["data"]
    if t["dataset"] == "wikitext2":
        return tok, {"train": mlm_blocks(d["path"], "train", tok, d["block_size"], d["max_train"]),
                     "eval": mlm_blocks(d["path"], "valid", tok, d["block_size"], d["max_eval"])}
    reader = read_sst2 if t["dataset"] == "sst2" else read_imdb
    splits = ("train", "dev") if t["dataset"] == "sst2" else ("train", "test")
    out = {}
    for name, split in zip(("train", "eval"), splits):
        rows = reader(d["path"], split, d["max_train"] if name == "train" else d["max_eval"])
        enc = tok([r[0] for r in rows], truncation=True, max_length=d["max_length"])
        out[name] = (enc["input_ids"], [r[1] for r in rows])
    return tok, out


def pad_batch(seqs, pad_id):
    import torch
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return ids, mask


# ----------------------------------------------------------------------------- one trial

def mask_smallest(mask, score, sparsity):
    """src/adapters/sparse_lora.cpp's unstructured rule: llround(sparsity * n) entries masked
    (never fewer than already are), the smallest |w| first, entries already masked ranked first,
    ties to the lower index (a stable sort)."""
    import torch
    n = mask.numel()
    count = max(int(math.floor(sparsity * n + 0.5)), int((~mask).sum()))
    ranked = torch.where(mask.flatten(), score.flatten(), torch.full((n,), -1.0))
    order = torch.sort(ranked, stable=True).indices
    out = mask.flatten().clone()
    out[order[:count]] = False
    return out.view_as(mask)


def cubic_sparsity(s_i, s_f, t0, t_end, t):
    t = min(max(t, t0), t_end)
    if t_end <= t0:
        return s_f
    return s_f + (s_i - s_f) * (1.0 - (t - t0) / (t_end - t0)) ** 3


def mlm_train_batch(blocks, tok, t, epoch, index):
    """One global batch of MLM blocks, masked as peft-sweep masks it: each data-parallel shard
    (dp x grad_accum of them) with its own generator, seeded from (seed, epoch, step, offset)."""
    import torch
    ids, labels = [], []
    for r in range(t["shards"]):
        begin, end = sweep_draws.shard_range(len(blocks), t["shards"], r)
        if end == begin:
            continue
        g = torch.Generator().manual_seed(sweep_draws.mlm_mask_seed(t["seed"], epoch, index, begin))
        i, l = mask_tokens(blocks[begin:end], tok, g)
        ids.append(i)
        labels.append(l)
    return torch.cat(ids), torch.cat(labels)


def run_trial(t, threads):
    import numpy as np  # noqa: F401
    import torch
    from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification

    torch.set_num_threads(threads)
    torch.manual_seed(t["seed"])
    same_draws = t.get("draws", "peft-sweep") == "peft-sweep"
    tr, mc, method = t["train"], t["method_cfg"], t["method"]
    mlm = t["dataset"] == "wikitext2"
    tok, data = load_task(t)
    row = {"trial": t["name"], "dataset": t["dataset"], "method": method, "rank": mc["rank"] if method in ADAPTER_METHODS else "",
           "sparsity": mc["sparsity"] if method == "sparse_lora" else "", "seed": t["seed"], "status": "complete", "note": "",
           "draws": t.get("draws", "peft-sweep")}
    kwargs = {}
    if method == "qlora":
        from transformers import BitsAndBytesConfig
        # The encoder's linears in NF4, as peft-sweep's QLoRA: the pooler and the heads stay
        # in fp32 (transformers 5 would otherwise make the classifier a Linear4bit, which
        # peft's modules_to_save copy cannot run: bitsandbytes asserts in its forward).
        # transformers 5 matches these names against a module's name or its last parts:
        # "pooler" alone does not match bert.pooler.dense (before 2026-12-07 the reference's
        # QLoRA classification trials ran a 4-bit pooler); "pooler.dense" does.
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_use_double_quant=True,
                                                           bnb_4bit_compute_dtype=torch.float32,
                                                           llm_int8_skip_modules=["pooler.dense", "classifier", "cls",
                                                                                  "pre_classifier", "vocab_transform",
                                                                                  "vocab_projector"])
    try:
        if mlm:
            model = AutoModelForMaskedLM.from_pretrained(t["base"], **kwargs)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(t["base"], num_labels=2, **kwargs)
    except Exception as e:  # bitsandbytes without a CPU 4-bit backend
        row.update(status="unsupported", note=f"load: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        return row
    # A base without an MLM head gets a fresh one, which is trained (peft-sweep: train_mlm_head).
    mlm_head_fresh = mlm and not any(k.startswith("cls.") for k in _checkpoint_keys(t["base"]))
    head_names = ("classifier",) if not mlm else (("cls.predictions.transform", "cls.predictions.bias") if mlm_head_fresh else ())

    def is_head(name):
        return any(name.startswith(h) for h in head_names)

    # The fresh head as peft-sweep draws it, before peft copies it (modules_to_save).
    fresh_head = "mlm" if mlm_head_fresh else ("classifier" if not mlm and _fresh_classifier(t["base"]) else None)
    if same_draws and fresh_head:
        sweep_draws.init_head_as_peft_sweep(model, fresh_head, t["seed"], model.config.initializer_range)

    targets = mc["targets"]
    if targets == "all-linear" or targets == ["all-linear"]:
        targets = ["query", "key", "value", "dense"]
    if method in ("lora", "sparse_lora", "qlora", "hira"):
        from peft import get_peft_model
        if method == "hira":
            from peft import HiraConfig
            if float(mc.get("hira_scale", 1.0)) != 1.0:
                row["note"] = f"hira_scale {mc['hira_scale']} not in peft's HiRA (1 used)"
            pc = HiraConfig(r=mc["rank"], target_modules=targets, hira_dropout=mc["dropout"],
                            modules_to_save=None if mlm else ["classifier"])
        else:
            from peft import LoraConfig
            pc = LoraConfig(r=mc["rank"], lora_alpha=mc["alpha"], lora_dropout=mc["dropout"], target_modules=targets,
                            use_rslora=bool(mc.get("rslora", False)), modules_to_save=None if mlm else ["classifier"])
        if method == "qlora":
            from peft import prepare_model_for_kbit_training
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        model = get_peft_model(model, pc)
        if same_draws:
            row["adapters_initialised"] = sweep_draws.init_adapters_as_peft_sweep(model, t["seed"])
        for n, p in model.named_parameters():
            if mlm_head_fresh and ("cls.predictions.transform" in n or n.endswith("cls.predictions.bias")):
                p.requires_grad_(True)
    elif method == "head":
        for n, p in model.named_parameters():
            p.requires_grad_(is_head(n))
    else:  # full
        for p in model.parameters():
            p.requires_grad_(True)

    # Parameter groups as peft-sweep's trial runner: adapters at lr, heads at head_lr, no
    # decay on biases and LayerNorm.
    head_lr = tr["head_lr"] if tr["head_lr"] > 0 else tr["lr"]
    groups = {}
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        clean = n.replace("base_model.model.", "").replace("modules_to_save.default.", "")
        head = method != "full" and (clean.startswith("classifier") or clean.startswith("cls."))
        decay = not (n.endswith(".bias") or "LayerNorm" in n or "layer_norm" in n)
        groups.setdefault((head, decay), []).append(p)
    optim = torch.optim.AdamW([{"params": ps, "lr": head_lr if h else tr["lr"], "weight_decay": tr["weight_decay"] if d else 0.0}
                               for (h, d), ps in groups.items()], betas=(0.9, 0.999), eps=1e-8)
    n_train = len(data["train"]) if mlm else len(data["train"][0])
    bs = tr["batch_size"]
    # src/train/task_source.cpp drops the last partial batch of every epoch, classification
    # and MLM alike, so the step count, the schedule and the samples seen are the same here.
    per_epoch = max(1, n_train // bs)
    total = tr["max_steps"] if tr["max_steps"] > 0 else tr["epochs"] * per_epoch
    warm = int(math.ceil(tr["warmup_ratio"] * total))

    def lr_lambda(step):  # src/train/schedule.h: transformers' get_linear_schedule_with_warmup
        if step < warm:
            return step / max(1, warm)
        return max(0.0, (total - step) / max(1, total - warm))
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_lambda)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total_params = sum(p.numel() for p in model.parameters())

    prune = None
    if method == "sparse_lora" and mc["sparsity"] > 0:
        at = lambda f: min(max(round(f * total), 1), max(1, total))  # noqa: E731
        start = at(mc["prune_start"])
        prune = {"start": start, "end": max(start, at(mc["prune_end"])), "every": max(1, int(mc["prune_every"])),
                 "masks": {}}
        lora_params = [(n, p) for n, p in model.named_parameters() if "lora_A" in n or "lora_B" in n]

    gen = torch.Generator().manual_seed(t["seed"])
    if same_draws:
        torch.manual_seed(t["seed"] * 1000003)  # peft-sweep's dropout seed (rank 0); the masks still differ
    model.train()
    losses = []
    cpu0 = time.process_time()
    step, t0 = 0, time.perf_counter()
    samples = 0
    epoch = 0
    while step < total:
        if same_draws:
            order = torch.tensor(sweep_draws.epoch_order(n_train, t["seed"], epoch), dtype=torch.long)
        else:
            order = torch.randperm(n_train, generator=gen)
        n_batches = n_train // bs
        for b in range(n_batches):
            if step >= total:
                break
            idx = order[b * bs:(b + 1) * bs]
            if mlm and same_draws:
                ids, labels = mlm_train_batch(data["train"][idx], tok, t, epoch, b)
                out = model(input_ids=ids, labels=labels)
            elif mlm:
                ids, labels = mask_tokens(data["train"][idx], tok, gen)
                out = model(input_ids=ids, labels=labels)
            else:
                ids, mask = pad_batch([data["train"][0][i] for i in idx.tolist()], tok.pad_token_id)
                labels = torch.tensor([data["train"][1][i] for i in idx.tolist()])
                out = model(input_ids=ids, attention_mask=mask, labels=labels)
            loss = out.loss
            losses.append(float(loss))
            if not torch.isfinite(loss):
                row.update(status="diverged", note=f"loss {loss.item()} at step {step}")
                break
            optim.zero_grad(set_to_none=True)
            loss.backward()
            if tr["max_grad_norm"] > 0:
                torch.nn.utils.clip_grad_norm_([p for g in optim.param_groups for p in g["params"]], tr["max_grad_norm"])
            optim.step()
            sched.step()
            step += 1
            samples += len(idx)
            if prune is not None:
                with torch.no_grad():
                    # as src/adapters/sparse_lora.cpp: every `every` steps from start, and at the end step
                    if prune["start"] <= step <= prune["end"] and ((step - prune["start"]) % prune["every"] == 0
                                                                  or step == prune["end"]):
                        s = cubic_sparsity(0.0, mc["sparsity"], prune["start"], prune["end"], step)
                        for n, p in lora_params:
                            prune["masks"][n] = mask_smallest(prune["masks"].get(n, torch.ones_like(p, dtype=torch.bool)), p.abs(), s)
                    for n, p in lora_params:
                        if n in prune["masks"]:
                            p.mul_(prune["masks"][n])
        if row["status"] != "complete":
            break
        epoch += 1
    train_seconds = time.perf_counter() - t0
    train_cpu_seconds = time.process_time() - cpu0  # all threads: compare on a loaded machine

    # Evaluation (eval mode, no grad), timed: inference throughput.
    model.eval()
    t1 = time.perf_counter()
    with torch.no_grad():
        if mlm:
            eg = torch.Generator().manual_seed(EVAL_MASK_SEED)  # the same masks as peft-sweep's
            inputs, labels = mask_tokens(data["eval"], tok, eg)
            nll, count = 0.0, 0
            for b in range(0, len(inputs), 64):
                logits = model(input_ids=inputs[b:b + 64]).logits
                lab = labels[b:b + 64]
                nll += torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), lab.view(-1), ignore_index=-100,
                                                         reduction="sum").item()
                count += int((lab != -100).sum())
            row["perplexity"] = math.exp(nll / max(1, count))
            n_eval = len(inputs)
        else:
            correct = 0
            ev = data["eval"]
            for b in range(0, len(ev[0]), 64):
                ids, mask = pad_batch(ev[0][b:b + 64], tok.pad_token_id)
                pred = model(input_ids=ids, attention_mask=mask).logits.argmax(-1)
                correct += int((pred == torch.tensor(ev[1][b:b + 64])).sum())
            row["accuracy"] = correct / len(ev[0])
            n_eval = len(ev[0])
    eval_seconds = time.perf_counter() - t1
    if prune is not None:
        zeros = sum(int((p == 0).sum()) for _, p in lora_params)
        row["adapter_sparsity"] = zeros / max(1, sum(p.numel() for _, p in lora_params))
    row.update(train_steps=step, train_seconds=train_seconds, train_cpu_seconds=train_cpu_seconds, samples_per_second=samples / max(train_seconds, 1e-9),
               eval_seconds=eval_seconds, eval_examples_per_second=n_eval / max(eval_seconds, 1e-9),
               trainable_params=trainable, total_params=total_params,
               peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, train_losses=losses)
    return row


def _fresh_classifier(base):
    """True when the checkpoint has no classifier: peft-sweep then draws a fresh one."""
    return not any(k == "classifier.weight" or k.endswith(".classifier.weight") for k in _checkpoint_keys(base))


def _checkpoint_keys(base):
    from safetensors import safe_open
    with safe_open(str(Path(base) / "model.safetensors"), "pt") as f:
        return list(f.keys())


# ----------------------------------------------------------------------------- floors (numpy)

def words(text):
    return re.findall(r"[a-z0-9']+", text.lower().replace("<br />", " "))


def bow_floor(t):
    import numpy as np
    d = t["data"]
    reader = read_sst2 if t["dataset"] == "sst2" else read_imdb
    splits = ("train", "dev") if t["dataset"] == "sst2" else ("train", "test")
    train, test = reader(d["path"], splits[0], d["max_train"]), reader(d["path"], splits[1], d["max_eval"])
    vocab = {}
    for text, _ in train:
        for w in set(words(text)):
            vocab[w] = vocab.get(w, 0) + 1
    vocab = {w: i for i, w in enumerate(sorted(w for w, c in vocab.items() if c >= 2))}

    def featurise(rows):
        x = np.zeros((len(rows), len(vocab) + 1))
        for r, (text, _) in enumerate(rows):
            for w in words(text):
                if w in vocab:
                    x[r, vocab[w]] += 1
        x = np.log1p(x)
        x[:, -1] = 1.0  # bias
        return x, np.array([y for _, y in rows], dtype=np.float64)

    xtr, ytr = featurise(train)
    xte, yte = featurise(test)
    w = np.zeros(xtr.shape[1])
    lam, lr = 1e-3, 0.5
    for _ in range(500):  # full-batch gradient descent on the L2-regularised logistic loss
        p = 1.0 / (1.0 + np.exp(-(xtr @ w)))
        g = xtr.T @ (p - ytr) / len(ytr) + lam * np.r_[w[:-1], 0.0]
        w -= lr * g
    acc = float((((xte @ w) > 0).astype(float) == yte).mean())
    return {"trial": f"{t['dataset']}/bow-logreg", "dataset": t["dataset"], "method": "bow_logreg", "status": "complete",
            "accuracy": acc, "note": f"{len(vocab)} words (document frequency >= 2), {len(train)} train / {len(test)} eval"}


def unigram_floor(t):
    import torch
    tok, data = load_task(t)
    counts = torch.bincount(data["train"].flatten(), minlength=len(tok)).double() + 1.0  # add-one
    logp = (counts / counts.sum()).log()
    _, labels = mask_tokens(data["eval"], tok, torch.Generator().manual_seed(EVAL_MASK_SEED))
    lab = labels[labels != -100]
    return {"trial": "wikitext2/unigram", "dataset": "wikitext2", "method": "unigram", "status": "complete",
            "perplexity": math.exp(-logp[lab].mean().item()), "note": "training word-piece frequencies, add-one"}


# ----------------------------------------------------------------------------- driver

FIELDS = ["trial", "dataset", "method", "rank", "sparsity", "seed", "draws", "status", "accuracy", "perplexity", "train_steps",
          "train_seconds", "train_cpu_seconds", "samples_per_second", "eval_seconds", "eval_examples_per_second", "peak_rss_bytes",
          "trainable_params", "total_params", "adapter_sparsity", "wall_seconds", "note"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sweep")
    ap.add_argument("--out", required=True, help="CSV file (a .json file with the same rows is written beside it)")
    ap.add_argument("--jobs", type=int, default=1, help="trials run at once (one process each)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads per trial (0: cores / jobs)")
    ap.add_argument("--only", default="", help="comma-separated methods to run")
    ap.add_argument("--no-floors", action="store_true")
    ap.add_argument("--draws", choices=["peft-sweep", "torch"], default="peft-sweep",
                    help="peft-sweep: the batch order, MLM masks, adapter and head initialisation of the peft-sweep "
                         "trial with the same seed (default); torch: torch's own draws")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one trial (JSON) and print its row
    a = ap.parse_args()
    if a.one:
        t = json.loads(a.one)
        print("ROW " + json.dumps(run_trial(t, a.threads or 1)), flush=True)
        return
    _, trials = expand(a.sweep)
    if trials:
        require_bert_family(trials[0]["base"])
    for t in trials:
        t["draws"] = a.draws
    if a.only:
        keep = set(a.only.split(","))
        trials = [t for t in trials if t["method"] in keep]
    threads = a.threads or max(1, (os.cpu_count() or 1) // a.jobs)
    rows = []
    if not a.no_floors:
        seen = set()
        for t in trials:
            if t["dataset"] in seen:
                continue
            seen.add(t["dataset"])
            rows.append(unigram_floor(t) if t["dataset"] == "wikitext2" else bow_floor(t))
            print(f"floor {rows[-1]['trial']}: {rows[-1].get('accuracy', rows[-1].get('perplexity')):.4f}", flush=True)
    pending = list(trials)
    running = []
    while pending or running:
        while pending and len(running) < a.jobs:
            t = pending.pop(0)
            p = subprocess.Popen([sys.executable, __file__, a.sweep, "--out", a.out, "--threads", str(threads), "--one", json.dumps(t)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            running.append((t, p, time.perf_counter()))
        time.sleep(0.2)
        for item in list(running):
            t, p, start = item
            if p.poll() is None:
                continue
            running.remove(item)
            out, err = p.communicate()
            row = next((json.loads(l[4:]) for l in out.splitlines() if l.startswith("ROW ")), None)
            if row is None:
                last = [l for l in err.strip().splitlines() if l.strip()][-1:] or ["no output"]
                row = {"trial": t["name"], "dataset": t["dataset"], "method": t["method"], "seed": t["seed"], "status": "failed",
                       "note": last[0][:300]}
            row["wall_seconds"] = time.perf_counter() - start
            rows.append(row)
            metric = row.get("accuracy", row.get("perplexity", float("nan")))
            print(f"{row['trial']}: {row['status']} {metric:.4f} train {row.get('train_seconds', float('nan')):.1f} s "
                  f"peak {row.get('peak_rss_bytes', 0) / 2**20:.0f} MiB {row.get('note', '')}", flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    Path(a.out).with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {a.out} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
