#!/usr/bin/env python3
"""One training step, side by side: the trainer, eager PyTorch, and the HF PEFT step (issue 12).

    python3 bench/compare_step.py [--quick] [--threads 2] [--shapes tiny,base] [--seqs 64,256]
                                  [--methods lora,qlora,hira,sparse_lora,full] [--no-mlm]
                                  [--precision fp32|bf16] [--steps N] [--warmup N]

Every path runs the same shapes, batch, thread count and data (seed 5: random ids in
[1, vocab), labels in {0, 1}; MLM: 15 % of positions (rand < 0.15) become id 4 and are the
labels). The data sums of each path are checked against the trainer's. Paths:

  trainer       build/bin/peft-bench step --trainer-only (the trainer as a trial runs it;
                LibTorch of that build). Every method it has; the MLM step at block 128.
  eager         a plain loop in Python over a DistilBERT written here in plain torch (manual
                attention, exact GELU; LoRA r=8, alpha 16 on q_lin/v_lin, pre_classifier +
                classifier trained): forward, mean CE, backward, clip_grad_norm_(1.0),
                torch.optim.AdamW(foreach=True), loss.item(). LoRA and full. Run with each
                interpreter that imports torch: the interop venv's (torch 2.15) and
                /usr/bin/python3 (Debian's python3-torch 1.13, when installed). For MLM also
                "eager-masked": the MLM head on the masked positions only.
  hf            transformers DistilBertForSequenceClassification (ForMaskedLM for MLM) from a
                config (random init, no download), peft.get_peft_model(LoraConfig(r=8,
                lora_alpha=16, target_modules=["q_lin", "v_lin"], task_type SEQ_CLS)), AdamW
                (foreach), clip_grad_norm_. LoRA, full, and QLoRA where bitsandbytes' CPU
                backend trains it. Needs the interop venv (transformers, peft, bitsandbytes).

Heap: peft-sweep sets glibc malloc up for training loops (PEFT_MALLOC, README "The heap"):
no mmap for large blocks and a 1 GiB trim threshold, so a step reuses the last step's pages
instead of faulting them in again. The Python paths run with glibc's defaults, as a user's
script does. --heap both adds the trainer with PEFT_MALLOC=system and every Python path with
GLIBC_TUNABLES set to the same two settings, so the table shows what the heap is worth on
each side. --cpu-kernels both adds the trainer with PEFT_CPU_KERNELS=torch: LibTorch's matmul
for the attention's q·kᵀ and weights·v (in 1.13 without MKL, a dispatched addmm per sequence
and head) and LibTorch's GELU, instead of peft-sweep's own CPU kernels.

Time per step: median over --steps steps after --warmup steps (trainer: from its per-step
progress reports). Ratio: path time / trainer time (> 1: the trainer is faster).

FLOP efficiency = counted step FLOP/s / gemm FLOP/s of the step's dominant shape
(B·S × dim by dim × hidden_dim), measured in the same run with the same threads, by each
path's own library ("eff") and by the fastest library measured ("eff/best"). Counted FLOPs
(see step_flops): T = B·S tokens, L layers, d = dim, h = hidden_dim, r = rank, V = vocab,
  forward    F = L·(2·T·(4d² + 2dh) + 4·B·S²·d)                 encoder linears + attention
           + adapters: L·2·(2·T·2dr) (LoRA: A and B on q and v; HiRA: the same two products
             of rank r, its elementwise product with W not counted)
           + head: cls 2·B·(d² + 2d); MLM 2·T·d² + 2·M·d·V, M = masked positions only
  backward   input gradients ≈ F (attention's backward counted 2× its forward; the
             vocabulary projection at M positions), layer 0's input gradient included
           + weight gradients of the trainable weights only: adapters 2× their forward,
             head 1× its forward; full: + 2·T·(4d² + 2dh)·L for the encoder weights
  optimizer, LayerNorm, softmax, GELU, embeddings: not counted (memory-bound, small)
QLoRA and Sparse LoRA count as LoRA (dequantisation and masks are not FLOPs).
MLM counts the vocabulary logits at the masked positions only (what the step needs), so a
step that computes them at every position shows it as lower efficiency.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What PEFT_MALLOC=tuned (peft-sweep's default, src/core/memory.cpp) does, as glibc tunables.
HEAP_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1073741824"
# The interop venv's python, as tests/interop/run_one.sh finds it.
VENV_PY = Path(os.environ.get("PEFT_INTEROP_PYTHON") or ROOT / ".cache" / "interop-venv" / "bin" / "python")
BENCH = ROOT / "build" / "bin" / "peft-bench"

SHAPES = {  # dim, layers, heads, hidden_dim, vocab (peft-bench: base = distilbert-base, tiny = tiny(1000, 512))
    "tiny": dict(dim=64, layers=2, heads=4, hidden=256, vocab=1000, positions=512),
    "base": dict(dim=768, layers=6, heads=12, hidden=3072, vocab=30522, positions=512),
}
RANK, ALPHA, LR, WD = 8, 16.0, 1e-3, 0.01


# ----------------------------------------------------------------------------- FLOP count
def step_flops(shape: str, batch: int, seq: int, method: str, task: str, masked: int) -> float:
    c = SHAPES[shape]
    d, L, h, V = c["dim"], c["layers"], c["hidden"], c["vocab"]
    T, B, S, r = batch * seq, batch, seq, RANK
    lin = 2 * T * (4 * d * d + 2 * d * h)           # encoder linears, one layer
    att = 4 * B * S * S * d                          # QK^T and AV, one layer
    adapters = 0 if method in ("full", "head") else 2 * (2 * T * 2 * d * r)  # q and v, one layer
    if task == "mlm":
        head_fwd = 2 * T * d * d + 2 * masked * d * V
        head_wgrad = 2 * T * d * d                   # vocab_transform (the projector is tied, frozen)
    else:
        head_fwd = 2 * B * (d * d + 2 * d)
        head_wgrad = head_fwd
    fwd = L * (lin + att + adapters) + head_fwd
    bwd_input = L * (lin + 2 * att + adapters) + head_fwd
    bwd_weight = L * adapters + head_wgrad           # adapter weight grads (A and B): their forward's cost
    if method == "full":
        bwd_weight += L * lin
    return float(fwd + bwd_input + bwd_weight)


# ----------------------------------------------------------------------------- Python worker
def make_batch(torch, batch, seq, vocab, task):
    torch.manual_seed(5)
    ids = torch.randint(1, vocab, (batch, seq), dtype=torch.long)
    mask = torch.ones(batch, seq, dtype=torch.long)
    if task == "cls":
        labels = torch.randint(0, 2, (batch,), dtype=torch.long)
    else:
        picked = torch.rand(batch, seq) < 0.15
        labels = torch.where(picked, ids, torch.full_like(ids, -100))
        ids = torch.where(picked, torch.full_like(ids, 4), ids)
    return ids, mask, labels


def plain_model(torch, c, task, method):
    """DistilBERT in plain torch (the layer names of transformers' DistilBERT)."""
    nn, F = torch.nn, torch.nn.functional
    d, H = c["dim"], c["heads"]

    class LoRALinear(nn.Module):
        def __init__(self, base):
            super().__init__()
            self.base = base
            self.lora_A = nn.Parameter(torch.empty(RANK, base.in_features))
            self.lora_B = nn.Parameter(torch.zeros(base.out_features, RANK))
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
            self.scale = ALPHA / RANK

        def forward(self, x):
            return self.base(x) + F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scale

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_lin, self.k_lin, self.v_lin, self.out_lin = (nn.Linear(d, d) for _ in range(4))
            self.sa_layer_norm = nn.LayerNorm(d, eps=1e-12)
            self.lin1, self.lin2 = nn.Linear(d, c["hidden"]), nn.Linear(c["hidden"], d)
            self.output_layer_norm = nn.LayerNorm(d, eps=1e-12)

        def forward(self, x, bias):
            B, S, _ = x.shape
            split = lambda t: t.view(B, S, H, d // H).transpose(1, 2)
            q, k, v = split(self.q_lin(x)) / math.sqrt(d // H), split(self.k_lin(x)), split(self.v_lin(x))
            w = torch.softmax(q @ k.transpose(-1, -2) + bias, dim=-1)
            ctx = (w @ v).transpose(1, 2).reshape(B, S, d)
            x = self.sa_layer_norm(self.out_lin(ctx) + x)
            return self.output_layer_norm(self.lin2(F.gelu(self.lin1(x))) + x)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.word_embeddings = nn.Embedding(c["vocab"], d)
            self.position_embeddings = nn.Embedding(c["positions"], d)
            self.emb_layer_norm = nn.LayerNorm(d, eps=1e-12)
            self.layer = nn.ModuleList(Block() for _ in range(c["layers"]))
            if task == "cls":
                self.pre_classifier, self.classifier = nn.Linear(d, d), nn.Linear(d, 2)
            else:
                self.vocab_transform, self.vocab_layer_norm = nn.Linear(d, d), nn.LayerNorm(d, eps=1e-12)
                self.vocab_bias = nn.Parameter(torch.zeros(c["vocab"]))

        def forward(self, ids, mask, sel=None):
            pos = torch.arange(ids.size(1)).unsqueeze(0)
            x = self.emb_layer_norm(self.word_embeddings(ids) + self.position_embeddings(pos))
            bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
            for blk in self.layer:
                x = blk(x, bias)
            if task == "cls":
                return self.classifier(F.relu(self.pre_classifier(x[:, 0])))
            if sel is not None:  # the MLM head at the masked positions only
                x = x[sel]
            x = self.vocab_layer_norm(F.gelu(self.vocab_transform(x)))
            return F.linear(x, self.word_embeddings.weight, self.vocab_bias)

    torch.manual_seed(1)
    m = Model()
    for mod in m.modules():
        if isinstance(mod, (nn.Linear, nn.Embedding)):
            nn.init.normal_(mod.weight, std=0.02)
            if getattr(mod, "bias", None) is not None:
                nn.init.zeros_(mod.bias)
    if method != "full":
        for p in m.parameters():
            p.requires_grad_(False)
        torch.manual_seed(2)
        for blk in m.layer:
            blk.q_lin, blk.v_lin = LoRALinear(blk.q_lin), LoRALinear(blk.v_lin)
        heads = ("pre_classifier", "classifier") if task == "cls" else ("vocab_transform", "vocab_layer_norm", "vocab_bias")
        for n, p in m.named_parameters():
            if n.startswith(heads):
                p.requires_grad_(True)
    return m


def hf_model(torch, c, task, method):
    """transformers' DistilBERT from a config (random init) + peft, or (None, why)."""
    import transformers
    from transformers import DistilBertConfig
    cfg = DistilBertConfig(vocab_size=c["vocab"], max_position_embeddings=c["positions"], n_layers=c["layers"],
                           n_heads=c["heads"], dim=c["dim"], hidden_dim=c["hidden"], dropout=0.0,
                           attention_dropout=0.0, seq_classif_dropout=0.0, num_labels=2)
    cls = transformers.DistilBertForSequenceClassification if task == "cls" else transformers.DistilBertForMaskedLM
    torch.manual_seed(1)
    if method == "qlora":
        # bitsandbytes 4-bit needs from_pretrained: save the random model, load it quantised.
        import tempfile
        from transformers import BitsAndBytesConfig
        tmp = tempfile.mkdtemp(prefix="compare-step-")
        cls(cfg).save_pretrained(tmp)
        try:
            m = cls.from_pretrained(tmp, quantization_config=BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.float32,
                # the head stays dense and trained, as the trainer's (only encoder linears are NF4)
                llm_int8_skip_modules=["pre_classifier", "classifier", "vocab_transform", "vocab_projector"]))
        except Exception as e:
            return None, f"bitsandbytes load: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        m = cls(cfg)
    if method == "full":
        for p in m.parameters():
            p.requires_grad_(True)
        return m, ""
    from peft import LoraConfig, TaskType, get_peft_model
    if method == "qlora":
        from peft import prepare_model_for_kbit_training
        m = prepare_model_for_kbit_training(m, use_gradient_checkpointing=False)
    pc = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=["q_lin", "v_lin"],
                    task_type=TaskType.SEQ_CLS if task == "cls" else None)
    torch.manual_seed(2)
    m = get_peft_model(m, pc)
    if task == "mlm":  # a random base: its MLM head is trained, as the trainer's train_mlm_head
        for n, p in m.named_parameters():
            if "vocab_transform" in n or "vocab_layer_norm" in n or n.endswith("vocab_projector.bias"):
                p.requires_grad_(True)
    return m, ""


def gemm_gflops(torch, tokens, k, n, dtype, repeats=7):
    """Median of `repeats` samples, each enough back-to-back matmuls for ~5 ms (as peft-bench)."""
    torch.manual_seed(3)
    x, w = torch.randn(tokens, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    out = torch.empty(tokens, n, dtype=dtype)
    flop = 2.0 * tokens * k * n
    inner = max(1, min(1000, int(5e-3 * 50e9 / flop)))  # ~5 ms at 50 GFLOP/s
    torch.matmul(x, w, out=out)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            torch.matmul(x, w, out=out)
        ts.append((time.perf_counter() - t0) / inner)
    return flop / statistics.median(ts) / 1e9


def run_job(torch, job):
    c = SHAPES[job["shape"]]
    task, method, path = job["task"], job["method"], job["path"]
    bf16 = job["precision"] == "bf16"
    out = dict(job, torch=torch.__version__)
    ids, mask, labels = make_batch(torch, job["batch"], job["seq"], c["vocab"], task)
    out["ids_sum"], out["labels_sum"] = int(ids.sum()), int(labels.sum())
    out["masked"] = int((labels != -100).sum()) if task == "mlm" else -1
    if path == "hf":
        model, why = hf_model(torch, c, task, method)
        if model is None:
            out["error"] = why
            return out
    else:
        model = plain_model(torch, c, task, method)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    out["trainable"] = sum(p.numel() for p in params)
    decay = [p for n, p in model.named_parameters() if p.requires_grad and not (n.endswith("bias") or "norm" in n.lower())]
    plain = [p for n, p in model.named_parameters() if p.requires_grad and (n.endswith("bias") or "norm" in n.lower())]
    kw = {"foreach": True} if "foreach" in torch.optim.AdamW.__init__.__code__.co_varnames else {}
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": plain, "weight_decay": 0.0}], lr=LR, **kw)
    ce = torch.nn.functional.cross_entropy
    sel = labels != -100 if job.get("masked_only") else None
    step_labels = labels[sel] if sel is not None else labels

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if path == "hf":
                logits = model(input_ids=ids, attention_mask=mask).logits
            else:
                logits = model(ids, mask, sel)
        loss = ce(logits.float().reshape(-1, logits.size(-1)), step_labels.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    try:
        for _ in range(job["warmup"]):
            step()
        ts = []
        for _ in range(job["steps"]):
            t0 = time.perf_counter()
            out["loss"] = step()
            ts.append(time.perf_counter() - t0)
    except Exception as e:  # bitsandbytes' CPU 4-bit backward, …
        out["error"] = f"step: {type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
        return out
    out["ms"] = 1000 * statistics.median(ts)
    return out


def worker(jobs_json: str) -> int:
    import torch
    jobs = json.loads(jobs_json)
    torch.set_num_threads(jobs[0]["threads"])
    gemms = {}
    for job in jobs:
        c = SHAPES[job["shape"]]
        key = (job["batch"] * job["seq"], c["dim"], c["hidden"])
        if key not in gemms:
            gemms[key] = (gemm_gflops(torch, *key, torch.float32),
                          gemm_gflops(torch, *key, torch.bfloat16) if job["precision"] == "bf16" else 0.0)
        try:
            res = run_job(torch, job)
        except Exception as e:
            res = dict(job, torch=torch.__version__, error=f"{type(e).__name__}: {str(e).splitlines()[0][:150] if str(e) else ''}")
        res["sgemm_gflops"], res["bf16_gemm_gflops"] = gemms[key]
        print("job-result " + json.dumps(res), flush=True)
    return 0


# ----------------------------------------------------------------------------- orchestration
def python_ok(py: str, modules: list[str]) -> tuple[bool, str]:
    try:
        # find_spec, not import: transformers and peft take seconds to import
        code = (f"import importlib.util as u, sys; missing = [m for m in {modules!r} if u.find_spec(m) is None]; "
                "sys.exit('missing: ' + ', '.join(missing)) if missing else None; import torch; print(torch.__version__)")
        r = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    if r.returncode != 0:
        return False, (r.stderr.strip().splitlines() or ["?"])[-1]
    return True, r.stdout.strip()


def run_python(py: str, jobs: list[dict], env: dict) -> list[dict]:
    if not jobs:
        return []
    r = subprocess.run([py, str(Path(__file__).resolve()), "--worker", json.dumps(jobs)], capture_output=True, text=True,
                       env=env)
    res = [json.loads(line[len("job-result "):]) for line in r.stdout.splitlines() if line.startswith("job-result ")]
    if r.returncode != 0 or len(res) < len(jobs):
        tail = (r.stderr.strip().splitlines() or ["?"])[-1]
        key = lambda j: (j["path"], j["shape"], j["seq"], j["task"], j["method"], j.get("masked_only", False))
        done = {key(j) for j in res}
        for j in jobs:
            if key(j) not in done:
                res.append(dict(j, error=f"worker exit {r.returncode}: {tail[:150]}"))
    return res


def merge_rounds(results: list[dict]) -> list[dict]:
    """One result per path and configuration: the median ms (and gemm rate) over the rounds that
    timed it, the rounds' times kept in "ms_rounds"; errors only where no round timed it."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        key = (r["label"], r["shape"], r["seq"], r["task"], r["method"])
        groups.setdefault(key, []).append(r)
    merged = []
    for rs in groups.values():
        timed = [r for r in rs if "ms" in r]
        if not timed:
            merged.append(rs[0])
            continue
        out = dict(timed[0])
        out["ms_rounds"] = [r["ms"] for r in timed]
        out["ms"] = statistics.median(out["ms_rounds"])
        for k in ("sgemm_gflops", "bf16_gemm_gflops"):
            vals = [r[k] for r in timed if r.get(k)]
            if vals:
                out[k] = statistics.median(vals)
        merged.append(out)
    return merged


def run_trainer(job: dict, env: dict) -> dict:
    cmd = [str(BENCH), "step", "--trainer-only", "--shape", job["shape"], "--seq", str(job["seq"]), "--batch",
           str(job["batch"]), "--method", job["method"], "--task", job["task"], "--precision", job["precision"],
           "--threads", str(job["threads"]), "--steps", str(job["steps"]), "--device", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in r.stdout.splitlines():
        if line.startswith("step-result "):
            res = json.loads(line[len("step-result "):])
            return dict(job, ms=res["trainer_ms_median"], ms_mean=res["trainer_ms_mean"], sgemm_gflops=res["sgemm_gflops"],
                        bf16_gemm_gflops=res["bf16_gemm_gflops"], ids_sum=res["ids_sum"], labels_sum=res["labels_sum"],
                        trainable=res["trainable"], torch="LibTorch " + res["libtorch"], loss=res["loss"],
                        masked=res["masked"], openblas_core=res.get("openblas_core", ""))
    tail = ((r.stderr or r.stdout).strip().splitlines() or ["?"])[-1]
    return dict(job, error=f"peft-bench exit {r.returncode}: {tail[:150]}")


def trainer_openblas_core(results: list[dict]) -> str:
    """The OpenBLAS kernel set the trainer ran on (peft-bench's step-result), or "" (MKL, or no trainer row yet)."""
    return next((r["openblas_core"] for r in results if r.get("openblas_core")), "")


def masked_count(batch, seq, rows):
    """MLM: the masked positions of the batch (the same draw on every path), as a path counted
    them; 15 % when none did."""
    for r in rows:
        if r.get("masked", -1) >= 0:
            return r["masked"]
    return int(round(0.15 * batch * seq))


def main() -> int:
    global BENCH
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny shape, seq 64, batch 4, 2+2 steps, LoRA/QLoRA/full + MLM")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shapes", default="tiny,base")
    ap.add_argument("--seqs", default="64,256")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--methods", default="lora,qlora,hira,sparse_lora,full")
    ap.add_argument("--no-mlm", action="store_true", help="skip the MLM step (block 128, LoRA)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--steps", type=int, default=10, help="timed steps (median)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--paths", default="trainer,eager,hf", help="which of trainer, eager, hf to run")
    ap.add_argument("--heap", choices=["default", "both"], default="default",
                    help="both: also the trainer with PEFT_MALLOC=system and the Python paths with glibc tuned as the "
                         "trainer's heap is (GLIBC_TUNABLES)")
    ap.add_argument("--cpu-kernels", choices=["default", "both"], default="default",
                    help="both: also the trainer with PEFT_CPU_KERNELS=torch (LibTorch's ops for the attention's "
                         "products and GELU instead of peft-sweep's own CPU kernels)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every path this many times, in turn, and take each path's median time (default 1)")
    ap.add_argument("--json", help="also write every result to this JSON file")
    ap.add_argument("--bench", default=str(BENCH), help="the peft-bench binary (default: build/bin/peft-bench)")
    ap.add_argument("--smoke", action="store_true",
                    help="the ctest smoke: --quick, LoRA only, no MLM; exit 77 without the interop venv, 1 when a path fails")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker)
    BENCH = Path(a.bench).resolve()
    if a.smoke:
        if not VENV_PY.exists():
            print(f"skip: no interop venv at {VENV_PY} (bash tests/interop/setup.sh makes it)")
            return 77
        a.quick, a.methods, a.no_mlm = True, "lora", True
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    if a.quick:
        a.shapes, a.seqs, a.batch, a.steps, a.warmup = "tiny", "64", 4, 2, 2
        if a.methods == ap.get_default("methods"):
            a.methods = "lora,qlora,full"
    shapes, seqs = a.shapes.split(","), [int(s) for s in a.seqs.split(",")]
    methods, paths = a.methods.split(","), a.paths.split(",")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads), HF_HUB_OFFLINE="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", TRANSFORMERS_VERBOSITY="error", TOKENIZERS_PARALLELISM="false")

    notes = []
    if not BENCH.exists() and "trainer" in paths:
        print(f"compare_step: {BENCH} is missing (flock /tmp/peft-build.lock ninja -C build peft-bench)")
        return 2
    pythons = []  # (label, interpreter, runs hf)
    if VENV_PY.exists():
        ok, v = python_ok(str(VENV_PY), ["transformers", "peft"])
        if ok:
            pythons.append((f"torch {v} (interop venv)", str(VENV_PY), True))
        else:
            if a.smoke:
                print(f"skip: the interop venv {VENV_PY} is incomplete ({v}; rerun tests/interop/setup.sh)")
                return 77
            notes.append(f"interop venv {VENV_PY} unusable ({v}): no HF path, no venv eager path")
    else:
        notes.append(f"no interop venv at {VENV_PY} (bash tests/interop/setup.sh makes it): "
                     "no HF path, no torch 2.x eager path")
    sys_py = "/usr/bin/python3"
    ok, v = python_ok(sys_py, [])
    if ok:
        pythons.append((f"torch {v} (/usr/bin/python3)", sys_py, False))
    else:
        notes.append(f"/usr/bin/python3 does not import torch ({v}): Debian's python3-torch 1.13 is not installed, "
                     "no torch 1.13 eager path (apt-get install python3-torch)")

    configs = []  # (shape, seq, task, method)
    for sh in shapes:
        for sq in seqs:
            for m in methods:
                configs.append((sh, sq, "cls", m))
        if not a.no_mlm:
            configs.append((sh, 128 if not a.quick else 64, "mlm", "lora"))
    base = dict(batch=a.batch, threads=a.threads, precision=a.precision, steps=a.steps, warmup=a.warmup)
    results = []
    t_start = time.time()
    # (label suffix, environment, heap): glibc's defaults for Python and peft-sweep's own heap for
    # the trainer, and with --heap both each side the other way too.
    trainer_envs = [("", env, "tuned")]
    python_envs = [("", env, "system")]
    if a.heap == "both":
        trainer_envs.append((", glibc heap", dict(env, PEFT_MALLOC="system"), "system"))
        python_envs.append((" +heap", dict(env, GLIBC_TUNABLES=HEAP_TUNABLES), "tuned"))
    if a.cpu_kernels == "both":
        trainer_envs.append((", torch kernels", dict(env, PEFT_CPU_KERNELS="torch"), "tuned"))
    # With --rounds N the whole sequence (every trainer job, then every Python job) runs N times
    # and each path's time is the median over the rounds: a VM that drifts over minutes then
    # biases no path by its place in the order.
    for rnd in range(a.rounds):
        rnd_tag = f"round {rnd + 1}/{a.rounds}: " if a.rounds > 1 else ""
        if "trainer" in paths:
            for sh, sq, task, m in configs:
                for suffix, tenv, heap in trainer_envs:
                    job = dict(base, path="trainer", shape=sh, seq=sq, task=task, method=m, heap=heap)
                    results.append(dict(run_trainer(job, tenv), label="trainer" + suffix))
                    print(f"  {rnd_tag}ran trainer{suffix} {sh} seq {sq} {task} {m}: "
                          f"{results[-1].get('ms', float('nan')):.2f} ms {results[-1].get('error', '')}", file=sys.stderr, flush=True)
        for (label, py, has_hf), (suffix, penv, heap) in [(p, e) for p in pythons for e in python_envs]:
            jobs = []
            for sh, sq, task, m in configs:
                if "eager" in paths and m in ("lora", "full"):
                    jobs.append(dict(base, path="eager", shape=sh, seq=sq, task=task, method=m))
                    if task == "mlm":  # what issue 12 asks of the trainer: logits at the masked positions only
                        jobs.append(dict(base, path="eager", shape=sh, seq=sq, task=task, method=m, masked_only=True))
                if has_hf and "hf" in paths and m in ("lora", "full", "qlora"):
                    jobs.append(dict(base, path="hf", shape=sh, seq=sq, task=task, method=m))
            if py == sys_py and "OPENBLAS_CORETYPE" not in penv:
                # Debian's torch 1.13 loads the same OpenBLAS, which falls back to its Prescott
                # kernels on a CPU model it does not know; the trainer restarts with a fitting
                # OPENBLAS_CORETYPE (core/blas_core.h), so the same-library path gets the same kernels.
                core = trainer_openblas_core(results)
                if core:
                    penv = dict(penv, OPENBLAS_CORETYPE=core)
                    note = f"eager torch 1.13 ran with OPENBLAS_CORETYPE={core}, the trainer's OpenBLAS kernels"
                    if note not in notes:
                        notes.append(note)
            print(f"  {rnd_tag}running {len(jobs)} Python jobs with {label}{suffix} …", file=sys.stderr, flush=True)
            for r in run_python(py, jobs, penv):
                r["label"] = f"{r['path']}{'-masked' if r.get('masked_only') else ''} {label.split(' (')[0].split('+')[0]}{suffix}"
                r["heap"] = heap
                results.append(r)
    results = merge_rounds(results) if a.rounds > 1 else results
    wall = time.time() - t_start

    # ---- the table
    best_sgemm = {}
    for r in results:
        key = (r["shape"], r["seq"])
        best_sgemm[key] = max(best_sgemm.get(key, 0.0), r.get("bf16_gemm_gflops" if a.precision == "bf16" else "sgemm_gflops", 0.0) or 0.0)
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    print(f"compare_step: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
          f"{a.threads} threads, batch {a.batch}, {a.precision}, median of {a.steps} steps after {a.warmup}"
          f"{f', median of {a.rounds} rounds (every path in turn)' if a.rounds > 1 else ''}; "
          f"load average before the table {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {wall:.0f} s")
    for label, py, _ in pythons:
        print(f"python paths: {label}: {py}")
    print(f"heap: the trainer's is peft-sweep's (PEFT_MALLOC=tuned: no mmap, 1 GiB trim threshold), Python's glibc's "
          f"defaults{'; rows marked glibc heap / +heap: the other way round' if a.heap == 'both' else ''}")
    trainer_core = trainer_openblas_core(results)
    if trainer_core:
        print(f"trainer's BLAS: OpenBLAS, {trainer_core} kernels")
    for n in notes:
        print("note: " + n)
    hdr = f"{'shape':<5} {'seq':>4} {'task':<4} {'method':<11} {'path':<31} {'ms/step':>9} {'×trainer':>8} {'GFLOP':>7} " \
          f"{'GFLOP/s':>8} {'gemm':>7} {'eff':>5} {'eff/best':>8}  note"
    print(hdr)
    print("-" * len(hdr))
    order = {"trainer": 0, "eager": 1, "hf": 2}
    for sh, sq, task, m in configs:
        rows = [r for r in results if (r["shape"], r["seq"], r["task"], r["method"]) == (sh, sq, task, m)]
        rows.sort(key=lambda r: (order[r["path"]], r["label"]))
        tr = next((r for r in rows if r["label"] == "trainer" and "ms" in r), None)
        masked = None
        for r in rows:
            gemm = r.get("bf16_gemm_gflops" if a.precision == "bf16" else "sgemm_gflops", 0.0) or 0.0
            note = r.get("error", "")
            if tr and "ids_sum" in r and (r["ids_sum"], r["labels_sum"]) != (tr["ids_sum"], tr["labels_sum"]):
                note += " data differ from the trainer's (sums)"
            if tr and r.get("trainable") not in (None, tr.get("trainable")):
                note += f" trainable {r['trainable']} (trainer {tr['trainable']})"
            if task == "mlm" and masked is None:
                masked = masked_count(a.batch, sq, rows)
            fl = step_flops(sh, a.batch, sq, m, task, masked or 0)
            if "ms" not in r:
                print(f"{sh:<5} {sq:>4} {task:<4} {m:<11} {r['label']:<31} {'—':>9} {'':>8} {fl / 1e9:>7.2f} {'':>8} "
                      f"{gemm:>7.1f} {'':>5} {'':>8}  {note}")
                continue
            if len(r.get("ms_rounds", [])) > 1:
                note += " rounds " + "/".join(f"{x:.4g}" for x in r["ms_rounds"])
            rate = fl / (r["ms"] / 1e3) / 1e9
            ratio = f"{r['ms'] / tr['ms']:.2f}" if tr else "—"
            best = best_sgemm.get((sh, sq), 0.0)
            eff = f"{rate / gemm:.2f}" if gemm else "—"
            effb = f"{rate / best:.2f}" if best else "—"
            print(f"{sh:<5} {sq:>4} {task:<4} {m:<11} {r['label']:<31} {r['ms']:>9.2f} {ratio:>8} {fl / 1e9:>7.2f} "
                  f"{rate:>8.1f} {gemm:>7.1f} {eff:>5} {effb:>8}  {note}")
    print(f"gemm: GFLOP/s of a (B·S)×dim by dim×hidden_dim {'bf16' if a.precision == 'bf16' else 'fp32'} matmul in the "
          "path's own library, same threads; eff = GFLOP/s ÷ that; eff/best = ÷ the fastest library's; ×trainer = "
          "path time ÷ trainer time")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    bad = [r for r in results if (r["path"] == "trainer" or a.smoke) and "ms" not in r]
    if a.smoke and bad:
        print("smoke: no time from " + ", ".join(r["label"] for r in bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
