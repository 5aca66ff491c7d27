"""bench/sweep_draws.py reproduces peft-sweep's batch order and MLM mask seeds.

The values pinned here are the ones the C++ tests pin (tests/data/test_batch_plan.cpp,
GoldenOrderPinsTheShuffle; tests/data/test_mlm_masking.cpp, TrainMaskSeedIsPinned), so a change
on either side fails one of the two. Runs without torch.
"""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "bench"))

import sweep_draws as d  # noqa: E402


def test_mt19937_64_is_the_standard_engine():
    # [rand.predef]: the 10000th output of a default-constructed std::mt19937_64.
    g = d.MT19937_64()
    for _ in range(9999):
        g()
    assert g() == 9981545732273789042


def test_epoch_order_is_peft_sweeps():
    assert d.epoch_order(10, 0, 0) == [7, 2, 5, 1, 9, 3, 0, 8, 4, 6]
    # Every row once, and another epoch gives another order.
    order = d.epoch_order(1000, 7, 3)
    assert sorted(order) == list(range(1000))
    assert order != d.epoch_order(1000, 7, 4)
    assert d.epoch_order(1, 7, 0) == [0]


def test_shard_ranges_give_the_first_ranks_the_remainder():
    assert [d.shard_range(10, 3, r) for r in range(3)] == [(0, 4), (4, 7), (7, 10)]
    assert d.shard_range(2, 4, 3) == (2, 2)


def test_mask_seed_is_peft_sweeps():
    assert d.mlm_mask_seed(1, 0, 5, 0) == 11400714817041636694
    assert d.mlm_mask_seed(7, 2, 3, 8) == 6018027432190031726
    assert d.mlm_mask_seed((1 << 40) + 3, 1, 99, 5) == 2675844284971656879


def test_torch_seed_keeps_the_64_bits():
    assert d.torch_seed(5) == 5
    assert d.torch_seed(11400714817041636694) == 11400714817041636694
    assert d.torch_seed(-1) == (1 << 64) - 1
