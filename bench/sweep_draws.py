"""peft-sweep's random draws, reproduced in Python, so that a reference run can use the very
batches, masks and initial weights a peft-sweep trial uses (bench/hf_reference.py).

Two kinds of stream:
- The batch order (src/data/batch_plan.cpp): a Fisher-Yates shuffle over std::mt19937_64 seeded
  through SplitMix64 (src/data/rng.h), with bounded draws by rejection. The C++ standard fixes
  mt19937_64's output, and the rest is written out by hand on both sides, so the orders are
  equal by construction; tests/python/test_sweep_draws.py and tests/data pin the same values.
- MLM masks and adapter / head initialisation: torch's CPU generator (mt19937 inside
  CPUGeneratorImpl), which gives the same stream in LibTorch 1.13 and torch 2.x for rand,
  randint, uniform_ and normal_; only the seeds and the order of the draws are reproduced here.

Dropout masks are not reproduced: they come from each side's own dropout kernels (torch 2.x with
MKL draws its Bernoulli masks differently from Debian's LibTorch 1.13), so two runs that share
everything here still differ by their dropout draws.

Nothing here imports torch at module level: the order functions run without it.
"""
from __future__ import annotations

MASK64 = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """SplitMix64's finaliser (Steele, Lea & Flood, OOPSLA 2014), as data::splitmix64."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def derive_seed(seed: int, stream: int) -> int:
    """data::derive_seed: an independent stream for (seed, stream)."""
    return splitmix64(splitmix64(seed & MASK64) ^ ((stream * 0xD1B54A32D192ED03 + 1) & MASK64))


class MT19937_64:
    """std::mt19937_64 (Matsumoto & Nishimura; the 64-bit parameters of the C++ standard,
    [rand.predef]: the 10000th output of a default-seeded engine is 9981545732273789042)."""

    N, M = 312, 156
    UPPER, LOWER = 0xFFFFFFFF80000000, 0x7FFFFFFF

    def __init__(self, seed: int = 5489):
        mt = [seed & MASK64]
        for i in range(1, self.N):
            prev = mt[-1]
            mt.append((6364136223846793005 * (prev ^ (prev >> 62)) + i) & MASK64)
        self.mt, self.i = mt, self.N

    def _twist(self) -> None:
        mt, n, m = self.mt, self.N, self.M
        for k in range(n):
            y = (mt[k] & self.UPPER) | (mt[(k + 1) % n] & self.LOWER)
            v = mt[(k + m) % n] ^ (y >> 1)
            if y & 1:
                v ^= 0xB5026F5AA96619E9
            mt[k] = v
        self.i = 0

    def __call__(self) -> int:
        if self.i >= self.N:
            self._twist()
        y = self.mt[self.i]
        self.i += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        return (y ^ (y >> 43)) & MASK64


class Rng:
    """data::Rng: mt19937_64 seeded with splitmix64(seed); unbiased bounded draws."""

    def __init__(self, seed: int):
        self.g = MT19937_64(splitmix64(seed & MASK64))

    def below(self, n: int) -> int:
        limit = MASK64 - (MASK64 % n)
        while True:
            x = self.g()
            if x < limit:
                return x % n


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """data::BatchPlan::epoch_order with shuffle on: the rows of epoch `epoch`, in order."""
    order = list(range(n))
    if n < 2:
        return order
    rng = Rng(derive_seed(seed, epoch))
    for i in range(n - 1, 0, -1):
        j = rng.below(i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def shard_range(size: int, dp: int, rank: int) -> tuple[int, int]:
    """data::BatchPlan::shard_range: rank `rank`'s rows [begin, end) of a global batch."""
    base, extra = divmod(size, dp)
    begin = rank * base + min(rank, extra)
    return begin, begin + base + (1 if rank < extra else 0)


def mlm_mask_seed(seed: int, epoch: int, index: int, offset: int) -> int:
    """The seed of one shard's training masks (src/train/task_source.cpp): fresh masks every
    step, from (trial seed, epoch, step in the epoch, the shard's offset in the global batch)."""
    return (((seed * 0x9E3779B97F4A7C15) & MASK64) ^ ((epoch << 32) & MASK64) ^ ((index * 1315423911) & MASK64)
            ^ offset) & MASK64


def torch_seed(seed: int) -> int:
    """A seed as torch.Generator.manual_seed takes it: the 64 bits, unsigned (it takes the
    whole range [0, 2**64) and maps a negative seed s to 2**64 + s)."""
    return seed & MASK64


def init_adapters_as_peft_sweep(model, seed: int) -> int:
    """The adapters' initial draws of a peft-sweep trial (src/train/trial_runner.cpp: the global
    generator seeded with the trial seed, then each adapter, in module order, draws its A with
    Kaiming-uniform a=sqrt(5); B stays zero). Module order is the order of the encoder's linear
    slots in both implementations (layer by layer; q, k, v, attention output, FFN in, FFN out).
    Returns the number of adapters initialised."""
    import math

    import torch
    torch.manual_seed(torch_seed(seed))
    n = 0
    with torch.no_grad():
        for _, module in model.named_modules():
            a = None
            if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
                a = module.lora_A["default"].weight
            elif hasattr(module, "hira_A") and "default" in getattr(module, "hira_A", {}):
                a = module.hira_A["default"]
            if a is None:
                continue
            torch.nn.init.kaiming_uniform_(a, a=math.sqrt(5))
            n += 1
    return n


def init_head_as_peft_sweep(model, head: str, seed: int, std: float) -> None:
    """A fresh head as peft-sweep's DistilBert::init_head(head, torch_default=false, seed) draws
    it, from its own generator seeded with the trial seed: classification draws the
    pre-classifier (BERT: the pooler, which the checkpoint then overwrites) and then the
    classifier, N(0, std), biases zero; MLM draws the transform's dense weight, biases zero,
    LayerNorm 1/0. Call it before peft wraps the model (modules_to_save copies the head)."""
    import torch
    g = torch.Generator().manual_seed(torch_seed(seed))
    with torch.no_grad():
        if head == "classifier":
            cls = model.classifier
            pre = getattr(model, "pre_classifier", None)  # DistilBERT; BERT's pooler comes from the file
            if pre is not None:
                pre.weight.normal_(0.0, std, generator=g)
                pre.bias.zero_()
            else:  # the pooler's draws, which the checkpoint then overwrites
                torch.empty(cls.in_features, cls.in_features).normal_(0.0, std, generator=g)
            cls.weight.normal_(0.0, std, generator=g)
            cls.bias.zero_()
        elif head == "mlm":
            tr = model.cls.predictions.transform
            tr.dense.weight.normal_(0.0, std, generator=g)
            tr.dense.bias.zero_()
            tr.LayerNorm.weight.fill_(1.0)
            tr.LayerNorm.bias.zero_()
            model.cls.predictions.bias.zero_()
        else:
            raise ValueError(f"unknown head {head!r}")
