"""BERT-family checkpoints = transformers.

Random checkpoints written by transformers' own save_pretrained (BertModel: bare names, with
the pooler; BertForSequenceClassification: `bert.` names, pooler → tanh → classifier;
BertForMaskedLM: no pooler, the decoder tied to the word embeddings) run through
`peft-tool forward` with heads none / classifier / mlm, with and without padding: fp32
relative error <= 1e-5. layer_norm_eps and hidden_act come from config.json (a non-default
eps and relu are tried). Then a LoRA adapter peft writes for BERT (query/key/value + the
classifier, PEFT's `base_model.model.bert.encoder…` layout) is put on the model by
`peft-tool forward --adapter` and gives peft's logits.
"""
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel

from interop_common import Checks, peft_forward, batch, randomise, vocab_file

torch.manual_seed(0)
c = Checks("interop.bert_transformers")


CONFIGS = {
    "small": dict(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                  max_position_embeddings=64, layer_norm_eps=1e-7),
    "small-relu": dict(vocab_size=500, hidden_size=48, num_hidden_layers=1, num_attention_heads=3, intermediate_size=96,
                       max_position_embeddings=64, hidden_act="relu", type_vocab_size=3),
}


with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    dirs = {}
    for cname, kw in CONFIGS.items():
        cfg = BertConfig(num_labels=3, **kw)
        print(f"config {cname}: {kw}")
        for head, cls in (("none", BertModel), ("classifier", BertForSequenceClassification), ("mlm", BertForMaskedLM)):
            m = randomise(cls(cfg)).eval()
            d = tmp / f"{cname}-{head}"
            m.save_pretrained(d)
            vocab_file(d / "vocab.txt", cfg.vocab_size)
            dirs[(cname, head)] = (d, m)
            with safe_open(d / "model.safetensors", "pt") as f:
                keys = set(f.keys())
            if head == "none":
                c.check(all(not k.startswith("bert.") for k in keys) and "pooler.dense.weight" in keys,
                        f"{cname}: BertModel's file has bare keys and the pooler ({len(keys)} tensors)")
            if head == "mlm":
                c.check("cls.predictions.decoder.weight" not in keys and not any("pooler" in k for k in keys),
                        f"{cname}: BertForMaskedLM's file omits the tied decoder weight and has no pooler")
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

    # A PEFT LoRA adapter for BERT on the six encoder linears (plain "dense" would also take
    # bert.pooler.dense, which peft-sweep treats as part of the head and refuses), classifier
    # saved, trained-looking values.
    from peft import LoraConfig, get_peft_model
    d, m = dirs[("small", "classifier")]
    pm = get_peft_model(BertForSequenceClassification.from_pretrained(d),
                        LoraConfig(r=4, lora_alpha=8, target_modules=["query", "key", "value", "attention.output.dense",
                                                   "intermediate.dense", "output.dense"], task_type="SEQ_CLS"))
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    pm.eval()
    ad = tmp / "lora-bert"
    pm.save_pretrained(ad)
    with safe_open(ad / "adapter_model.safetensors", "pt") as f:
        keys = sorted(f.keys())
    c.check("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight" in keys,
            f"peft's BERT adapter layout: {keys[0]} … ({len(keys)} tensors)")
    for padded in (False, True):
        ids, mask = batch(1000, padded)
        with torch.no_grad():
            ref = pm(input_ids=ids, attention_mask=mask).logits
        ours = peft_forward(str(d), "classifier", ids.tolist(), mask.tolist(), adapter=str(ad))
        c.close(f"peft LoRA on BERT (the six encoder linears, classifier saved) {'padded' if padded else 'unpadded'}", ours, ref)

c.finish()
