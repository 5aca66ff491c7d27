"""Promise 3: PEFT in both directions (LoRA, rsLoRA, Sparse LoRA, HiRA).

(b) Adapters made by peft (get_peft_model, every adapter factor random so B != 0, heads saved
    with modules_to_save) → save_pretrained → `peft-tool forward --adapter` gives peft's
    logits (relative error <= 1e-5).
(c) peft's merge_and_unload and ours (`peft-tool merge`, which calls adapters::merge_all and
    writes the merged weights) give the same weights, tensor by tensor, and the same logits.
(a) Adapters trained here (`peft-sweep trial … --checkpoint BASE --save-adapter DIR`) load with
    PeftModel.from_pretrained onto the same base, with nothing missing or unexpected, and give
    `peft-tool forward --adapter`'s logits.
(d) HiRA: names, initialisation and scaling, ours against peft's tuners/hira, are printed.
"""
import json
import math
import subprocess
import tempfile
from pathlib import Path

import torch
from peft import HiraConfig, LoraConfig, PeftModel, get_peft_model
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import DistilBertConfig, DistilBertForSequenceClassification

from interop_common import BIN, Checks, peft_forward, run, tool

torch.manual_seed(0)
c = Checks("interop.peft_adapters")
ALL = ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"]


def vocab_file(path, size):
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [chr(i) for i in range(ord("a"), ord("z") + 1)] + list("0123456789.,!?'-")
    toks = special + chars + ["##" + ch for ch in chars]
    Path(path).write_text("\n".join(toks + [f"tok{i}" for i in range(size - len(toks))]) + "\n")


def make_base(d):
    cfg = DistilBertConfig(vocab_size=400, dim=64, n_layers=2, n_heads=4, hidden_dim=128, max_position_embeddings=160, num_labels=2)
    m = DistilBertForSequenceClassification(cfg).eval()
    with torch.no_grad():  # non-trivial biases and LayerNorms
        for n, p in m.named_parameters():
            if n.endswith("bias"):
                p.normal_(0, 0.05)
    m.save_pretrained(d)
    vocab_file(d / "vocab.txt", cfg.vocab_size)
    return cfg


def fresh_base(d):
    return DistilBertForSequenceClassification.from_pretrained(d).eval()


def batch(vocab):
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(5, vocab, (4, 10), generator=g)
    ids[:, 0] = 2
    mask = torch.ones_like(ids)
    for r, n in enumerate([10, 8, 5, 3]):
        ids[r, n - 1] = 3
        ids[r, n:] = 0
        mask[r, n:] = 0
    return ids, mask


def randomise_adapter(pm, sparsity=0.0):
    """Every adapter factor random (peft's init has B = 0, which would hide B's layout)."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if any(k in n for k in ("lora_A", "lora_B", "hira_A", "hira_B")):
                p.copy_(torch.randn(p.shape, generator=g) * (0.3 if "hira" in n else 0.2))
                if sparsity:
                    p.mul_((torch.rand(p.shape, generator=g) >= sparsity).float())


with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    base_dir = tmp / "base"
    cfg = make_base(base_dir)
    ids, mask = batch(cfg.vocab_size)

    cases = {
        "lora": LoraConfig(r=4, lora_alpha=8, target_modules=["q_lin", "v_lin"], task_type="SEQ_CLS"),
        "rslora": LoraConfig(r=4, lora_alpha=8, use_rslora=True, target_modules=ALL, task_type="SEQ_CLS"),
        "sparse_lora": LoraConfig(r=8, lora_alpha=16, target_modules=ALL, task_type="SEQ_CLS"),
        "hira": HiraConfig(r=4, target_modules=["q_lin", "v_lin", "lin1"], task_type="SEQ_CLS"),
    }
    print("(b) peft-made adapters → peft-tool forward --adapter;  (c) merge_and_unload vs peft-tool merge")
    for name, pc in cases.items():
        pm = get_peft_model(fresh_base(base_dir), pc)
        randomise_adapter(pm, sparsity=0.5 if name == "sparse_lora" else 0.0)
        with torch.no_grad():  # the saved head differs from the base's: proves it is loaded
            pm.base_model.model.classifier.modules_to_save["default"].weight.normal_(0, 0.3)
        pm.eval()
        ad = tmp / f"peft-{name}"
        pm.save_pretrained(ad)
        with safe_open(ad / "adapter_model.safetensors", "pt") as f:
            keys = sorted(f.keys())
            zeros = sum(int((f.get_tensor(k) == 0).sum()) for k in keys if "lora" in k or "hira" in k)
            total = sum(f.get_tensor(k).numel() for k in keys if "lora" in k or "hira" in k)
        print(f"  {name}: {len(keys)} tensors, e.g. {keys[0]}; adapter zeros {zeros}/{total}")
        with torch.no_grad():
            ref = pm(input_ids=ids, attention_mask=mask).logits
        c.close(f"{name}: peft-tool forward --adapter vs peft", peft_forward(str(base_dir), "classifier", ids.tolist(), mask.tolist(), adapter=str(ad)), ref)
        # (c) merge
        merged_ref = pm.merge_and_unload().eval()
        sd_ref = {k: v for k, v in merged_ref.state_dict().items()}
        out = tmp / f"merged-{name}"
        run([tool("peft-tool"), "merge", "--model", base_dir, "--adapter", ad, "--out", out])
        sd_ours = load_file(out / "model.safetensors")
        missing = sorted(set(sd_ref) - set(sd_ours) - {"vocab_projector.weight"})
        extra = sorted(set(sd_ours) - set(sd_ref))
        c.check(not missing and not extra, f"{name}: merged tensor names equal merge_and_unload's (missing {missing}, extra {extra})")
        worst, worst_k, exact = 0.0, "", 0
        for k, v in sd_ours.items():
            if k in sd_ref:
                e = float((v.double() - sd_ref[k].double()).abs().max() / sd_ref[k].double().abs().max().clamp_min(1e-30))
                exact += int(torch.equal(v, sd_ref[k]))
                if e > worst:
                    worst, worst_k = e, k
        c.check(worst <= 1e-6, f"{name}: merged weights vs merge_and_unload: {exact}/{len(sd_ours)} tensors bit-identical, "
                f"worst relative error {worst:.3g} ({worst_k or '-'}) (<= 1e-6)")
        with torch.no_grad():
            mref = merged_ref(input_ids=ids, attention_mask=mask).logits
        c.close(f"{name}: peft-tool forward on our merged checkpoint vs merge_and_unload model", peft_forward(str(out), "classifier", ids.tolist(), mask.tolist()), mref)

    # (a) adapters trained here → PeftModel.from_pretrained
    sweep = BIN / "peft-sweep"
    if not sweep.exists():
        c.check(False, f"(a) needs {sweep}, which is not built")
    else:
        print("(a) adapters trained by peft-sweep → PeftModel.from_pretrained")
        trained = {
            "lora": ["--method", "lora", "--rank", "4", "--alpha", "8", "--targets", "q_lin", "v_lin"],
            "rslora": None,  # through a one-trial sweep file (use_rslora is a sweep-file option)
            "sparse_lora": ["--method", "sparse_lora", "--rank", "4", "--alpha", "8", "--sparsity", "0.5", "--targets", "q_lin", "v_lin", "lin1"],
            "hira": ["--method", "hira", "--rank", "4", "--hira-scale", "4", "--targets", "q_lin", "v_lin"],
        }
        for name, args in trained.items():
            out = tmp / f"trained-{name}"
            common = ["--checkpoint", base_dir, "--dataset", "synthetic_sentiment", "--synthetic-train", "256", "--max-train", "256",
                      "--max-eval", "64", "--max-length", "32", "--batch-size", "32", "--max-steps", "8", "--lr", "0.01",
                      "--device", "cpu", "--save-adapter", out]
            if args is None:  # rsLoRA is a sweep-file option: a one-trial sweep file
                toml = tmp / "rslora.toml"
                toml.write_text(f"""[sweep]\nname = "interop-rslora"\ndp = 1\nseeds = [1]\n
[model]\ncheckpoint = "{base_dir}"\n
[train]\nmax_steps = 8\nbatch_size = 32\nlr = 0.01\ndevice = "cpu"\nsave_adapter = true\nadapter_dir = "{out}"\n
[grid]\nmethod = "lora"\nrank = 4\ndataset = "synthetic_sentiment"\n
[methods.lora]\nalpha = 8\nrslora = true\ntargets = ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"]\n
[datasets.synthetic_sentiment]\nsynthetic_train = 256\nsynthetic_eval = 64\nmax_length = 32\n""")
                cmd = [str(sweep), "trial", "--sweep", str(toml)]
            else:
                cmd = [str(sweep), "trial", *args, *map(str, common)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if not c.check(r.returncode == 0, f"{name}: peft-sweep trial --save-adapter exited {r.returncode}"):
                print(r.stdout[-2000:], r.stderr[-2000:])
                continue
            ad = next(p.parent for p in out.rglob("adapter_config.json"))
            acfg = json.loads((ad / "adapter_config.json").read_text())
            if name == "rslora":
                c.check(acfg.get("use_rslora") is True, f"rslora: the saved adapter_config has use_rslora {acfg.get('use_rslora')}")
            base = fresh_base(base_dir)
            pm = PeftModel.from_pretrained(base, ad).eval()
            # keys peft expected but did not find / found but did not use
            with safe_open(ad / "adapter_model.safetensors", "pt") as f:
                saved = set(f.keys())
            live = {k.replace(".default", "") for k in pm.state_dict() if any(s in k for s in ("lora_", "hira_", "modules_to_save"))}
            live = {k.replace(".modules_to_save", "") for k in live}
            c.check(saved == live, f"{name}: saved keys = the keys peft's model holds ({len(saved)} tensors; "
                    f"unexpected {sorted(saved - live)[:4]}, missing {sorted(live - saved)[:4]})")
            with torch.no_grad():
                ref = pm(input_ids=ids, attention_mask=mask).logits
            ours = peft_forward(str(base_dir), "classifier", ids.tolist(), mask.tolist(), adapter=str(ad))
            c.close(f"{name} (peft_type {acfg['peft_type']}, r {acfg['r']}): PeftModel.from_pretrained vs peft-tool forward --adapter", ours, ref)
            base_logits = fresh_base(base_dir)(input_ids=ids, attention_mask=mask).logits.detach()
            delta = float((ref - base_logits).abs().max())
            c.check(delta > 1e-4, f"{name}: the trained adapter changes the logits (max |Δ| {delta:.3g} > 1e-4)")
            if name == "sparse_lora":
                with safe_open(ad / "adapter_model.safetensors", "pt") as f:
                    z = sum(int((f.get_tensor(k) == 0).sum()) for k in f.keys() if "lora" in k)
                    n = sum(f.get_tensor(k).numel() for k in f.keys() if "lora" in k)
                print(f"  sparse_lora trained here: LoRA layout with {z}/{n} zeros ({z / n:.1%})")
            if name == "hira":
                # (d) HiRA, ours against peft's: names, init, scaling.
                with safe_open(ad / "adapter_model.safetensors", "pt") as f:
                    hk = sorted(k for k in f.keys() if "hira" in k)
                print(f"  (d) HiRA names: ours {hk[0]} …; peft's live names "
                      f"{next(k for k in pm.state_dict() if 'hira_A' in k)} (ParameterDict, no .weight) — same")
                peft_cfg_keys = set(HiraConfig().to_dict())
                unknown = sorted(set(acfg) - peft_cfg_keys)
                # A deviation, shown (not failed): peft warns "Unexpected keyword arguments … ignored" and loads the rest.
                print(f"  (d) HiRA adapter_config DEVIATION: keys ours writes that peft's HiraConfig does not have "
                      f"(peft warns and ignores them): {unknown or 'none'}")
                print("  (d) HiRA scaling: peft has none (ΔW = W0 ⊙ (B·A)); our hira_scale (here 4) is folded into the saved "
                      "hira_B, so the file is plain peft HiRA and loads as it is (logits compared above)")
                hp = get_peft_model(fresh_base(base_dir), HiraConfig(r=4, target_modules=["q_lin"]))
                A = next(p for n, p in hp.named_parameters() if "hira_A" in n).detach()
                B = next(p for n, p in hp.named_parameters() if "hira_B" in n).detach()
                bound = 1 / math.sqrt(A.shape[1])  # kaiming_uniform(a=√5) bound = 1/√fan_in
                c.check(float(B.abs().max()) == 0.0 and float(A.abs().max()) <= bound,
                        f"(d) HiRA init: peft A ~ U(±1/√in) (max {float(A.abs().max()):.4f} <= {bound:.4f}), B = 0 — ours: "
                        "A kaiming_uniform(a=√5), B = 0 (src/adapters/hira.cpp): same")
c.finish()
