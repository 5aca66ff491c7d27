"""Promise 4: NF4 = bitsandbytes.

A random checkpoint (transformers' save_pretrained) goes through `peft-tool quantize`; the same
fp32 weights go through bitsandbytes.functional.quantize_4bit(quant_type="nf4", blocksize=64,
compress_statistics=True) on the CPU. Per tensor: packed bytes, absmax codes, nested absmax,
offset, quant maps, the non-tensor quant_state and dequantize_4bit output must be identical.
Then peft-tool NF4 checkpoints (DistilBERT and BERT, sizes that are multiples of the block
size, which bitsandbytes' CPU kernel needs) are loaded by transformers with a 4-bit
BitsAndBytesConfig on the CPU, and their logits are compared with peft-tool's own forward.
"""
import json
import tempfile
import traceback
from pathlib import Path

import bitsandbytes as bnb
import bitsandbytes.functional as BF
import torch
from safetensors.torch import load_file
from transformers import DistilBertConfig, DistilBertForSequenceClassification

from interop_common import Checks, peft_forward, rel_err, run, tool

def bnb_cpu_tolerance(model):
    """The logits tolerance against transformers + bitsandbytes on this CPU: on one with AVX-512
    BF16, bitsandbytes 0.50 repacks each Linear4bit for its CPU kernel at the first forward
    (quant_state.packing_format_for_cpu) and turns absmax and the compute into bfloat16, so its
    logits carry bf16 rounding (2^-8 relative) that ours, in fp32, do not."""
    packed = any(getattr(getattr(mod.weight, "quant_state", None), "packing_format_for_cpu", False)
                 for mod in model.modules() if isinstance(mod, bnb.nn.Linear4bit))
    if packed:
        print("bitsandbytes repacked the weights for its bf16 CPU kernel (AVX-512 BF16): logits compared at bf16 tolerance 4e-3")
        return 4e-3
    return None


torch.manual_seed(0)
c = Checks("interop.nf4_bitsandbytes")
print(f"bitsandbytes {bnb.__version__}, quantize_4bit on cpu")

with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    # dim 96, hidden 200: 96·96 and 96·200 weights; 200·96 = 19200 = 300 blocks of 64 and
    # 75 nested blocks of 256 would be exact, so one lin has an odd in-size to test partial blocks.
    cfg = DistilBertConfig(vocab_size=300, dim=96, n_layers=2, n_heads=4, hidden_dim=200, max_position_embeddings=64, num_labels=2)
    m = DistilBertForSequenceClassification(cfg).eval()
    with torch.no_grad():
        m.distilbert.transformer.layer[1].ffn.lin2.weight.mul_(7.0)  # a wider dynamic range in one tensor
        m.distilbert.transformer.layer[0].attention.q_lin.weight[0, :64] = 0.0  # an all-zero block
    base = tmp / "base"
    m.save_pretrained(base)
    (base / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"t{i}" for i in range(295)]) + "\n")
    out = tmp / "nf4"
    print(run([tool("peft-tool"), "quantize", "--model", base, "--out", out]).strip())
    ours = load_file(out / "model.safetensors")
    fp32 = load_file(base / "model.safetensors")
    linears = sorted(k[: -len(".weight.absmax")] for k in ours if k.endswith(".weight.absmax"))
    print(f"{len(linears)} quantized linear layers")
    totals = {"tensors": 0, "identical": 0}
    for path in linears:
        w = fp32[path + ".weight"].float().contiguous()
        packed, qs = BF.quantize_4bit(w, blocksize=64, compress_statistics=True, quant_type="nf4")
        ref = {k: v for k, v in qs.as_dict(packed=True).items()}
        ref_weight = packed
        fields = {
            "weight (packed 4-bit codes)": (ours[path + ".weight"], ref_weight),
            "absmax (uint8 codes)": (ours[path + ".weight.absmax"], ref["absmax"]),
            "nested_absmax": (ours[path + ".weight.nested_absmax"], ref["nested_absmax"]),
            "quant_map": (ours[path + ".weight.quant_map"], ref["quant_map"]),
            "nested_quant_map": (ours[path + ".weight.nested_quant_map"], ref["nested_quant_map"]),
            "quant_state (json bytes)": (ours[path + ".weight.quant_state.bitsandbytes__nf4"], ref["quant_state.bitsandbytes__nf4"]),
        }
        line, deviations = [], []
        for name, (a, b) in fields.items():
            same = a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape) and torch.equal(a, b)
            totals["tensors"] += 1
            totals["identical"] += same
            if same:
                line.append(name.split(" ")[0])
            else:
                detail = f"dtype {a.dtype}/{b.dtype} shape {tuple(a.shape)}/{tuple(b.shape)}"
                if a.shape == b.shape and a.dtype == b.dtype:
                    diff = (a.view(-1) != b.view(-1)).nonzero().view(-1)
                    detail = f"{diff.numel()} of {a.numel()} entries differ, first at {int(diff[0])}"
                deviations.append(f"{name.split(' ')[0]} ({detail})")
        qjson = json.loads(bytes(ours[path + ".weight.quant_state.bitsandbytes__nf4"].tolist()).decode())
        offset_ours, offset_ref = qjson["nested_offset"], float(qs.offset)
        ulps = abs(torch.tensor(offset_ours).view(torch.int32).item() - torch.tensor(offset_ref).view(torch.int32).item())
        deq_ref = BF.dequantize_4bit(packed, qs, quant_type="nf4")
        qs_ours = BF.QuantState.from_dict({k[len(path) + len(".weight."):]: v for k, v in ours.items()
                                           if k.startswith(path + ".weight.")}, device=torch.device("cpu"))
        deq_ours = BF.dequantize_4bit(ours[path + ".weight"], qs_ours, quant_type="nf4")
        print(f"  {path} {tuple(w.shape)}: identical [{', '.join(line)}]" +
              (f"; differ [{'; '.join(deviations)}]" if deviations else "") +
              f"; offset {offset_ours!r} vs bnb {offset_ref!r} ({ulps} ulp); dequantize_4bit identical {torch.equal(deq_ours, deq_ref)}")
        # Explain every difference. (1) the offset: bnb's CPU path takes torch.mean of the fp32
        # absmax; ours is the fp64 sum rounded once. Redo bnb's second stage with OUR offset:
        # everything downstream (absmax codes, nested absmax) must then be bit-identical.
        _, qs_plain = BF.quantize_4bit(w, blocksize=64, compress_statistics=False, quant_type="nf4")
        absmax32 = qs_plain.absmax.float()
        c.check(ulps <= 1, f"{path}: offset (absmax.mean()) within 1 ulp of bnb's: {ulps} ulp")
        nested_o, nested_r = ours[path + ".weight.nested_absmax"], ref["nested_absmax"]
        nulps = int((nested_o.view(torch.int32) - nested_r.view(torch.int32)).abs().max())
        d_nested = float((nested_o.double() - nested_r.double()).abs().max())
        d_offset = abs(offset_ours - offset_ref)
        one_ulp = float(torch.finfo(torch.float32).eps) * float(nested_r.abs().max())
        c.check(d_nested <= d_offset + one_ulp, f"{path}: nested absmax (max |absmax - offset| per 256 blocks) differs by "
                f"{d_nested:.3g} ({nulps} ulp), no more than the offset's difference {d_offset:.3g} + 1 ulp")
        # Absmax codes: where ours and bnb's differ, ours must be the nearest code of the dynamic
        # map to (absmax - offset) / nested absmax, and bnb's its neighbour (bnb's CPU C kernel
        # cquantize_blockwise_cpu_fp32 searches the map by bisection, which can end one code off).
        codes_o, codes_r = ours[path + ".weight.absmax"], ref["absmax"]
        qmap = ref["nested_quant_map"]
        for i in (codes_o != codes_r).nonzero().view(-1).tolist():
            blk = i // 256
            x = float((absmax32[i] - torch.tensor(offset_ours)) / nested_o[blk])
            nearest = int((qmap - x).abs().argmin())
            co, cr = int(codes_o[i]), int(codes_r[i])
            print(f"    DEVIATION absmax code {i}: ours {co} ({float(qmap[co])!r}), bnb cpu {cr} ({float(qmap[cr])!r}); "
                  f"value (absmax - offset)/nested = {x!r}: |Δ| to ours {abs(x - float(qmap[co])):.3g}, to bnb's {abs(x - float(qmap[cr])):.3g}")
            c.check(co == nearest and abs(co - cr) == 1, f"{path}: absmax code {i}: ours is the nearest code ({nearest}), bnb's a neighbour")
        # (2) all-zero blocks: ours writes code 0 for every value (bitsandbytes' CUDA kernel:
        # 0 * (1/0) = NaN → code 0), bnb's CPU path writes code 7 (0.0).
        blocks = w.view(-1, 64)
        zero = (blocks.abs().amax(1) == 0).nonzero().view(-1).tolist()
        po, pr = ours[path + ".weight"].view(-1, 32), packed.view(-1, 32)
        other = [b for b in range(po.shape[0]) if b not in zero]
        c.check(torch.equal(po[other], pr[other]), f"{path}: packed codes identical in every block with a non-zero value "
                f"({len(other)} blocks)")
        for b in zero:
            print(f"    DEVIATION all-zero block {b}: our codes 0x{int(po[b, 0]):02x}…, bnb cpu 0x{int(pr[b, 0]):02x}…")
        for nm in ("quant_map", "nested_quant_map"):
            c.check(torch.equal(ours[path + ".weight." + nm], ref[nm]), f"{path}: {nm} identical")
        if not deviations:
            c.check(torch.equal(deq_ours, deq_ref), f"{path}: dequantize_4bit identical")
        else:
            print(f"    dequantize_4bit: our state vs bnb's, relative error {rel_err(deq_ours, deq_ref):.3g}")
    print(f"NF4 state tensors byte-identical to bitsandbytes (cpu): {totals['identical']} of {totals['tensors']}")

    # transformers + BitsAndBytesConfig on the CPU. On a CPU with AVX-512 BF16, bitsandbytes
    # 0.50's Linear4bit.forward repacks the weight for its CPU kernel
    # (_convert_weight_packed_for_cpu), which reshapes absmax to (out, in / 64) and so needs
    # every in-size to be a multiple of the block size: the odd sizes above cannot go through
    # it (bitsandbytes' limit, not the checkpoint's). Real models' sizes (384, 768, 1536, 3072)
    # are multiples of 64, so the load-and-compare runs on a model with such sizes.
    cfg64 = DistilBertConfig(vocab_size=300, dim=128, n_layers=2, n_heads=4, hidden_dim=256,
                             max_position_embeddings=64, num_labels=2)
    m64 = DistilBertForSequenceClassification(cfg64).eval()
    base64 = tmp / "base64"
    m64.save_pretrained(base64)
    (base64 / "vocab.txt").write_text((base / "vocab.txt").read_text())
    out = tmp / "nf4-64"
    print(run([tool("peft-tool"), "quantize", "--model", base64, "--out", out]).strip())
    linears = [k for k in load_file(out / "model.safetensors") if k.endswith(".weight.absmax")]
    ids = torch.randint(5, cfg.vocab_size, (2, 9))
    ids[:, 0] = 2
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    ours_logits = peft_forward(str(out), "classifier", ids.tolist(), mask.tolist())
    # The checkpoint's own quantization_config, as peft-tool quantize writes it (with
    # llm_int8_skip_modules naming the heads it keeps in fp32; without them transformers turned
    # pre_classifier/classifier into Linear4bit and bitsandbytes failed in the forward pass).
    cj = json.loads((out / "config.json").read_text())
    skip = cj["quantization_config"].get("llm_int8_skip_modules", [])
    c.check("pre_classifier" in skip and "classifier" in skip, f"quantization_config.llm_int8_skip_modules = {skip}")
    try:
        qm = DistilBertForSequenceClassification.from_pretrained(out, device_map="cpu").eval()
        n4 = sum(isinstance(mod, bnb.nn.Linear4bit) for mod in qm.modules())
        with torch.no_grad():
            ref_logits = qm(input_ids=ids, attention_mask=mask).logits.float()
        print(f"transformers loaded the peft-tool NF4 checkpoint on cpu: {n4} Linear4bit layers")
        c.check(n4 == len(linears), f"transformers made {n4} Linear4bit layers for {len(linears)} quantized layers")
        c.close("logits: transformers+bitsandbytes (cpu) on the peft-tool NF4 checkpoint vs peft-tool forward", ours_logits, ref_logits,
                **({"tol": t} if (t := bnb_cpu_tolerance(qm)) else {}))
    except Exception as e:  # the CPU backend's limits are a finding, reported in full
        traceback.print_exc()
        c.check(False, f"transformers could not load the NF4 checkpoint on cpu: {type(e).__name__}: {e}")

    # The same for a BERT checkpoint (BertForSequenceClassification: token types, pooler):
    # peft-tool quantize writes bitsandbytes' names for every encoder linear, transformers loads
    # it with a 4-bit BitsAndBytesConfig, and the logits agree with peft-tool's forward.
    from transformers import BertConfig, BertForSequenceClassification
    bcfg = BertConfig(vocab_size=300, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=256, max_position_embeddings=64, num_labels=2)
    bm = BertForSequenceClassification(bcfg).eval()
    bbase, bout = tmp / "bert", tmp / "bert-nf4"
    bm.save_pretrained(bbase)
    (bbase / "vocab.txt").write_text((base / "vocab.txt").read_text())
    print(run([tool("peft-tool"), "quantize", "--model", bbase, "--out", bout]).strip())
    bours, bfp32 = load_file(bout / "model.safetensors"), load_file(bbase / "model.safetensors")
    blin = sorted(k[: -len(".weight.absmax")] for k in bours if k.endswith(".weight.absmax"))
    want = sorted(k[: -len(".weight")] for k in bfp32 if k.startswith("bert.encoder.") and k.endswith(".weight")
                  and bfp32[k].dim() == 2)
    c.check(blin == want, f"BERT: the {len(want)} encoder linears are quantized ({len(blin)}: "
            f"{', '.join(sorted({k.split('.')[-2] + '.' + k.split('.')[-1] for k in blin}))})")
    same = 0
    for path in blin:
        w = bfp32[path + ".weight"].float().contiguous()
        packed, qs = BF.quantize_4bit(w, blocksize=64, compress_statistics=True, quant_type="nf4")
        same += torch.equal(bours[path + ".weight"], packed) and torch.equal(bours[path + ".weight.quant_map"], qs.as_dict(packed=True)["quant_map"])
    c.check(same == len(blin), f"BERT: packed 4-bit codes and quant maps identical to bitsandbytes' in {same} of {len(blin)} layers")
    bskip = json.loads((bout / "config.json").read_text())["quantization_config"].get("llm_int8_skip_modules", [])
    print(f"BERT quantization_config.llm_int8_skip_modules = {bskip}")
    bids = torch.randint(5, bcfg.vocab_size, (2, 9))
    bids[:, 0] = 2
    bmask = torch.ones_like(bids)
    bmask[1, 5:] = 0
    bours_logits = peft_forward(str(bout), "classifier", bids.tolist(), bmask.tolist())
    try:
        bq = BertForSequenceClassification.from_pretrained(bout, device_map="cpu").eval()
        n4 = sum(isinstance(mod, bnb.nn.Linear4bit) for mod in bq.modules())
        with torch.no_grad():
            bref = bq(input_ids=bids, attention_mask=bmask).logits.float()
        c.check(n4 == len(blin), f"BERT: transformers made {n4} Linear4bit layers for {len(blin)} quantized layers")
        c.close("BERT logits: transformers+bitsandbytes (cpu) on the peft-tool NF4 checkpoint vs peft-tool forward",
                bours_logits, bref, **({"tol": t} if (t := bnb_cpu_tolerance(bq)) else {}))
    except Exception as e:
        traceback.print_exc()
        c.check(False, f"transformers could not load the BERT NF4 checkpoint on cpu: {type(e).__name__}: {e}")
c.finish()
