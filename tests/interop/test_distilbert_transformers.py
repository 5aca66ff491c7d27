"""Promise 1: DistilBERT = transformers.

Random checkpoints written by transformers' own save_pretrained (DistilBertModel,
DistilBertForSequenceClassification, DistilBertForMaskedLM; the MLM file has no
vocab_projector.weight, it is tied to the word embeddings) run through `peft-tool forward`
with heads none / classifier / mlm, with and without padding: fp32 relative error <= 1e-5.
The other direction: a checkpoint peft-tool writes (`peft-tool merge`, which writes the
model's weights under transformers' names with the tied projector omitted) loads with
from_pretrained with no missing or unexpected keys and gives the same logits.
"""
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import (DistilBertConfig, DistilBertForMaskedLM, DistilBertForSequenceClassification,
                          DistilBertModel)

from interop_common import BIN, Checks, peft_forward, run, tool, batch, randomise, vocab_file

torch.manual_seed(0)
c = Checks("interop.distilbert_transformers")


CONFIGS = {
    "small": dict(vocab_size=1000, dim=64, n_layers=2, n_heads=4, hidden_dim=128, max_position_embeddings=64),
    "small-sinusoidal-gelu": dict(vocab_size=500, dim=48, n_layers=1, n_heads=3, hidden_dim=96, max_position_embeddings=64,
                                  sinusoidal_pos_embds=True, activation="gelu"),
}



with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    for cname, kw in CONFIGS.items():
        cfg = DistilBertConfig(num_labels=3, **kw)
        print(f"config {cname}: {kw}")
        dirs = {}
        for head, cls in (("none", DistilBertModel), ("classifier", DistilBertForSequenceClassification),
                          ("mlm", DistilBertForMaskedLM)):
            m = randomise(cls(cfg)).eval()
            d = tmp / f"{cname}-{head}"
            m.save_pretrained(d)
            vocab_file(d / "vocab.txt", cfg.vocab_size)
            dirs[head] = (d, m)
            with safe_open(d / "model.safetensors", "pt") as f:
                keys = set(f.keys())
            if head == "mlm":
                c.check("vocab_projector.weight" not in keys,
                        f"{cname}: transformers' MLM file omits the tied vocab_projector.weight ({len(keys)} tensors)")
            if head == "none":
                c.check(all(not k.startswith("distilbert.") for k in keys),
                        f"{cname}: DistilBertModel's file has bare keys (no distilbert. prefix), e.g. {sorted(keys)[0]}")
            for padded in (False, True):
                ids, mask = batch(cfg.vocab_size, padded)
                with torch.no_grad():
                    out = m(input_ids=ids, attention_mask=mask)
                ref = out.last_hidden_state if head == "none" else out.logits
                ours = peft_forward(str(d), head, ids.tolist(), mask.tolist())
                tag = "padded" if padded else "unpadded"
                c.close(f"{cname} {cls.__name__} head={head} {tag} {tuple(ref.shape)}", ours, ref)
                if padded and head != "classifier":
                    keep = mask.bool()
                    c.close(f"{cname} {cls.__name__} head={head} padded, real tokens only", ours[keep], ref[keep])

    # The other direction: a checkpoint peft-tool writes. `peft-tool merge` of a zero-update
    # adapter writes the base's own weights (merged with nothing) under transformers' names.
    import json
    for head, cls in (("classifier", DistilBertForSequenceClassification), ("mlm", DistilBertForMaskedLM)):
        d, m = dirs[head]
        ad = tmp / f"zero-adapter-{head}"
        ad.mkdir()
        from peft import LoraConfig, get_peft_model
        pm = get_peft_model(cls.from_pretrained(d), LoraConfig(r=2, lora_alpha=4, target_modules=["q_lin"],
                                                                task_type="SEQ_CLS" if head == "classifier" else None))
        # B = 0 (peft's init): the merged checkpoint must equal the base.
        pm.save_pretrained(ad)
        out = tmp / f"written-{head}"
        run([tool("peft-tool"), "merge", "--model", d, "--adapter", ad, "--out", out])
        back, info = cls.from_pretrained(out, output_loading_info=True)
        back.eval()
        c.check(not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"],
                f"peft-tool's {head} checkpoint → {cls.__name__}.from_pretrained: missing {info['missing_keys']}, "
                f"unexpected {info['unexpected_keys']}, mismatched {info['mismatched_keys']}")
        with safe_open(out / "model.safetensors", "pt") as f:
            c.check("vocab_projector.weight" not in f.keys(), f"peft-tool's {head} checkpoint omits the tied vocab_projector.weight")
        ids, mask = batch(back.config.vocab_size, True)
        with torch.no_grad():
            ref = back(input_ids=ids, attention_mask=mask).logits
            orig = m(input_ids=ids, attention_mask=mask).logits
        c.close(f"peft-tool's {head} checkpoint in transformers vs peft-tool forward on it", peft_forward(str(out), head, ids.tolist(), mask.tolist()), ref)
        c.close(f"peft-tool's {head} checkpoint in transformers vs the original model", ref, orig, tol=0.0)

    # The checkpoint peft-sweep itself saves (model::save_pretrained): the MLM-pretrained tiny
    # base that `model.pretrain = true` caches, from a one-trial sweep with a short pretraining.
    sweep = BIN / "peft-sweep"
    if not c.check(sweep.exists(), f"{sweep} built"):
        c.finish()
    cache = tmp / "cache"
    toml = tmp / "pretrain.toml"
    toml.write_text(f"""[sweep]\nname = "interop-pretrain"\ndp = 1\nseeds = [1]\n
[model]\npreset = "tiny"\npretrain = true\npretrain_steps = 20\ncache_dir = "{cache}"\n
[train]\nmax_steps = 1\nbatch_size = 16\ndevice = "cpu"\n
[grid]\nmethod = "head"\ndataset = "synthetic_sentiment"\n
[datasets.synthetic_sentiment]\nsynthetic_train = 64\nsynthetic_eval = 32\n""")
    run([sweep, "trial", "--sweep", toml])
    saved = [p.parent for p in cache.rglob("model.safetensors")]
    if c.check(len(saved) == 1, f"peft-sweep cached one pretrained base under {cache}: {[str(p.name) for p in saved]}"):
        d = saved[0]
        back, info = DistilBertForMaskedLM.from_pretrained(d, output_loading_info=True)
        back.eval()
        c.check(not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"],
                f"peft-sweep's saved base → DistilBertForMaskedLM.from_pretrained: missing {info['missing_keys']}, "
                f"unexpected {info['unexpected_keys']}, mismatched {info['mismatched_keys']}")
        with safe_open(d / "model.safetensors", "pt") as f:
            c.check("vocab_projector.weight" not in f.keys(), "peft-sweep's saved base omits the tied vocab_projector.weight")
        ids, mask = batch(back.config.vocab_size, True)
        with torch.no_grad():
            ref = back(input_ids=ids, attention_mask=mask).logits
        c.close(f"peft-sweep's saved base ({back.config.n_layers} layers, dim {back.config.dim}) in transformers vs peft-tool forward --head mlm",
                peft_forward(str(d), "mlm", ids.tolist(), mask.tolist()), ref)

c.finish()
