"""Shared helpers of the interop tests (tests/interop/test_*.py).

Each test is a plain script run by run_one.sh with the reference environment's python:
exit 0 pass, 1 fail, 77 skip (after one line saying why). Figures are printed as they are
measured; `Checks` collects failures so a script reports every one before exiting 1.
Environment: PEFT_BUILD_DIR (the build folder, bin/ under it), PEFT_SHARED_DATA (the data
folder; default ../shared/data next to the source tree).
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("PEFT_BUILD_DIR", SRC / "build"))
BIN = BUILD / "bin"
TOL = 1e-5  # relative error allowed in fp32 comparisons


def skip(reason):
    print(f"interop: {reason}")
    sys.exit(77)


def shared_data_path():
    """Where the shared data folder is looked for: $PEFT_SHARED_DATA, else ../shared/data."""
    return Path(os.environ.get("PEFT_SHARED_DATA") or (SRC.parent / "shared" / "data"))


def shared_data():
    """The shared data folder, or None when it is absent."""
    d = shared_data_path()
    return d if d.is_dir() else None


def tool(name):
    p = BIN / name
    if not os.access(p, os.X_OK):
        skip(f"{p} not built")
    return str(p)


def run(cmd, stdin=None):
    """Runs a command; its stdout (text). A non-zero exit raises with the command's stderr."""
    r = subprocess.run([str(c) for c in cmd], input=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stderr[-4000:]}")
    return r.stdout


def peft_forward(model_dir, head, ids, mask=None, adapter=None):
    """`peft-tool forward` logits as a float32 torch tensor."""
    import torch

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"ids": ids, "mask": mask}, f)
    try:
        Path(f.name + ".ids").write_text(json.dumps(ids))
        cmd = [tool("peft-tool"), "forward", "--model", model_dir, "--head", head, "--ids", "@" + f.name + ".ids"]
        if mask is not None:
            Path(f.name + ".mask").write_text(json.dumps(mask))
            cmd += ["--mask", "@" + f.name + ".mask"]
        if adapter is not None:
            cmd += ["--adapter", adapter]
        out = json.loads(run(cmd))
    finally:
        for s in ("", ".ids", ".mask"):
            if os.path.exists(f.name + s):
                os.unlink(f.name + s)
    return torch.tensor(out["logits"], dtype=torch.float32)


def rel_err(ours, ref):
    """max |ours - ref| / max |ref| (inf on a shape mismatch)."""
    if tuple(ours.shape) != tuple(ref.shape):
        return float("inf")
    ref = ref.double()
    return float((ours.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


class Checks:
    """Collects pass/fail lines; finish() prints the verdict and exits 0 or 1."""

    def __init__(self, name):
        self.name = name
        self.failures = []
        self.count = 0

    def check(self, ok, what):
        self.count += 1
        print(f"  {'ok  ' if ok else 'FAIL'} {what}", flush=True)
        if not ok:
            self.failures.append(what)
        return ok

    def close(self, label, ours, ref, tol=TOL):
        e = rel_err(ours, ref)
        return self.check(e <= tol, f"{label}: relative error {e:.3g} (<= {tol:g})")

    def finish(self):
        if self.failures:
            print(f"{self.name}: {len(self.failures)} of {self.count} checks FAILED:")
            for f in self.failures:
                print(f"  - {f}")
            sys.exit(1)
        print(f"{self.name}: all {self.count} checks passed")
        sys.exit(0)


# ---- random checkpoints and batches shared by the model tests


def randomise(model):
    """transformers' init leaves biases at 0 and LayerNorm at 1: perturb everything so each
    parameter matters to the comparison."""
    import torch
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or "layer_norm" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p)) if name.endswith("weight") else p.normal_(0, 0.1)
            elif name.endswith("bias"):
                p.normal_(0, 0.05)
    return model


def vocab_file(path, size):
    """A WordPiece vocabulary of `size` entries: the specials, characters, ##characters, tokN."""
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [chr(i) for i in range(ord("a"), ord("z") + 1)] + list("0123456789.,!?'-")
    toks = special + chars + ["##" + ch for ch in chars]
    toks += [f"tok{i}" for i in range(size - len(toks))]
    Path(path).write_text("\n".join(toks) + "\n")


BATCH_LEN = 12
PADDED_LENGTHS = [12, 7, 3]


def batch(vocab, padded):
    """3 rows of BATCH_LEN ids ([CLS] first); padded: rows of 12, 7 and 3 tokens ([SEP] last,
    pad id 0, mask 0)."""
    import torch
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, vocab, (3, BATCH_LEN), generator=g)
    ids[:, 0] = 2
    mask = torch.ones(3, BATCH_LEN, dtype=torch.long)
    if padded:
        for r, n in enumerate(PADDED_LENGTHS):
            ids[r, n - 1] = 3
            ids[r, n:] = 0
            mask[r, n:] = 0
    return ids, mask
