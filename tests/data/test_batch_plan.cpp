// Deterministic epoch orders, data-parallel shards that cover every row exactly once, and
// batches gathered with dynamic padding.
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/batch.h"
#include "data/batch_plan.h"
#include "data_test_util.h"

using namespace peft::data;

namespace {

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

ClassificationData toy_data() {
  // 6 rows of lengths 3..8 (ids = row*100 + position), pad 0.
  ClassificationData d;
  const int64_t n = 6, L = 8;
  d.ids = torch::zeros({n, L}, torch::kInt64);
  d.mask = torch::zeros({n, L}, torch::kInt64);
  d.lengths = torch::empty({n}, torch::kInt64);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t len = 3 + i;
    d.lengths[i] = len;
    for (int64_t j = 0; j < len; ++j) {
      d.ids[i][j] = i * 100 + j + 1;
      d.mask[i][j] = 1;
    }
  }
  d.labels = torch::tensor(std::vector<int64_t>{0, 1, 0, 1, 0, 1});
  d.contrast = {1, 0, 0, 1, 1, 0};
  return d;
}

}  // namespace

TEST(BatchPlan, EveryIndexExactlyOncePerEpochAcrossRanks) {
  for (int64_t n : {0, 1, 7, 100, 257}) {
    for (int64_t batch : {1, 5, 8, 32}) {
      for (int dp : {1, 2, 3, 4}) {
        for (bool drop_last : {false, true}) {
          BatchPlan plan(n, {batch, dp, true, drop_last, 42});
          for (int64_t e = 0; e < 2; ++e) {
            Epoch epoch = plan.epoch(e);
            std::multiset<int64_t> seen;
            for (int64_t step = 0; step < epoch.steps(); ++step) {
              int64_t total = 0, smallest = batch, largest = 0, expected_offset = 0;
              for (int r = 0; r < dp; ++r) {
                BatchShard s = epoch.shard(step, r);
                const int64_t size = s.indices.size(0);
                EXPECT_EQ(s.offset, expected_offset);
                expected_offset += size;
                total += size;
                smallest = std::min(smallest, size);
                largest = std::max(largest, size);
                for (int64_t i : to_vector(s.indices)) seen.insert(i);
                EXPECT_EQ(s.global_size, epoch.shard(step, 0).global_size);
              }
              EXPECT_EQ(total, epoch.shard(step, 0).global_size);
              EXPECT_LE(largest - smallest, 1) << "n=" << n << " B=" << batch << " dp=" << dp;
              if (drop_last) EXPECT_EQ(total, batch);
            }
            const int64_t covered = drop_last ? n / batch * batch : n;
            ASSERT_EQ(static_cast<int64_t>(seen.size()), covered);
            EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), seen.size());  // no repeats
            if (!drop_last)
              for (int64_t i = 0; i < n; ++i) EXPECT_EQ(seen.count(i), 1u);
          }
        }
      }
    }
  }
}

TEST(BatchPlan, ShardRangesFirstRanksTakeTheRemainder) {
  EXPECT_EQ(BatchPlan::shard_range(10, 4, 0), (std::pair<int64_t, int64_t>{0, 3}));
  EXPECT_EQ(BatchPlan::shard_range(10, 4, 1), (std::pair<int64_t, int64_t>{3, 6}));
  EXPECT_EQ(BatchPlan::shard_range(10, 4, 2), (std::pair<int64_t, int64_t>{6, 8}));
  EXPECT_EQ(BatchPlan::shard_range(10, 4, 3), (std::pair<int64_t, int64_t>{8, 10}));
  EXPECT_EQ(BatchPlan::shard_range(1, 3, 2), (std::pair<int64_t, int64_t>{1, 1}));  // empty shard
}

TEST(BatchPlan, OrderIsDeterministicPerSeedAndEpoch) {
  BatchPlan a(1000, {32, 2, true, false, 7}), b(1000, {32, 2, true, false, 7}), c(1000, {32, 2, true, false, 8});
  EXPECT_TRUE(a.epoch_order(0).equal(b.epoch_order(0)));
  EXPECT_TRUE(a.epoch_order(3).equal(b.epoch_order(3)));
  EXPECT_FALSE(a.epoch_order(0).equal(a.epoch_order(1)));
  EXPECT_FALSE(a.epoch_order(0).equal(c.epoch_order(0)));
  // The order does not depend on dp or the batch size, only on (seed, epoch).
  EXPECT_TRUE(a.epoch_order(2).equal(BatchPlan(1000, {5, 4, true, false, 7}).epoch_order(2)));
  BatchPlan ordered(5, {2, 1, false, false, 7});
  EXPECT_EQ(to_vector(ordered.epoch_order(4)), (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

TEST(BatchPlan, GoldenOrderPinsTheShuffle) {
  // Hand-written Fisher–Yates over std::mt19937_64: the same on every platform, and in
  // bench/sweep_draws.py, whose test (tests/python/test_sweep_draws.py) pins the same order.
  const auto order = to_vector(BatchPlan(10, {4, 1, true, false, 0}).epoch_order(0));
  EXPECT_EQ(order, (std::vector<int64_t>{7, 2, 5, 1, 9, 3, 0, 8, 4, 6}));
}

TEST(BatchPlan, StepsPerEpoch) {
  EXPECT_EQ(BatchPlan(10, {4, 1, true, false, 0}).steps_per_epoch(), 3);
  EXPECT_EQ(BatchPlan(10, {4, 1, true, true, 0}).steps_per_epoch(), 2);
  EXPECT_EQ(BatchPlan(0, {4, 1, true, false, 0}).steps_per_epoch(), 0);
  peft::testing::expect_input_error([] { BatchPlan(10, {0, 1, true, false, 0}); }, {"batch size"});
  peft::testing::expect_input_error([] { BatchPlan(10, {4, 0, true, false, 0}); }, {"dp"});
}

TEST(GatherBatch, RowsNarrowedToTheLongestInTheBatch) {
  const ClassificationData d = toy_data();
  const torch::Tensor idx = torch::tensor(std::vector<int64_t>{3, 0, 1});
  ClassificationBatch b = gather_batch(d, idx);
  EXPECT_EQ(b.ids.sizes(), (std::vector<int64_t>{3, 6}));  // row 3 has 6 tokens
  EXPECT_TRUE(b.ids.is_contiguous());
  EXPECT_TRUE(b.ids.equal(d.ids.index_select(0, idx).narrow(1, 0, 6)));
  EXPECT_TRUE(b.mask.equal(d.mask.index_select(0, idx).narrow(1, 0, 6)));
  EXPECT_EQ(to_vector(b.labels), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(b.contrast.scalar_type(), torch::kBool);
  EXPECT_EQ(b.contrast.to(torch::kInt64).sum().item<int64_t>(), 2);  // rows 3 and 0
  EXPECT_EQ(b.global_size, 3);
  EXPECT_EQ(b.tokens, d.lengths.index_select(0, idx).sum().item<int64_t>());  // counted on the host
  EXPECT_EQ(b.tokens, b.mask.sum().item<int64_t>());
  // The source is untouched (no aliasing writes).
  b.ids.fill_(-1);
  EXPECT_EQ(d.ids.min().item<int64_t>(), 0);
}

TEST(GatherBatch, FromAShardAndEmptyShards) {
  const ClassificationData d = toy_data();
  BatchPlan plan(d.size(), {4, 3, true, false, 1});  // batches of 4 and 2 over 3 ranks
  Epoch e = plan.epoch(0);
  ClassificationBatch b = gather_batch(d, e.shard(1, 2));
  EXPECT_EQ(b.size(), 0);  // global batch of 2 rows: ranks 0 and 1 get one, rank 2 none
  EXPECT_EQ(b.global_size, 2);
  EXPECT_EQ(b.ids.dim(), 2);
  ClassificationBatch b0 = gather_batch(d, e.shard(0, 0));
  EXPECT_EQ(b0.size(), 2);
  EXPECT_EQ(b0.global_size, 4);
}

TEST(GatherBatch, MlmBlocks) {
  MlmData m;
  m.block_size = 4;
  m.blocks = torch::arange(20, torch::kInt64).view({5, 4});
  torch::Tensor g = gather_blocks(m, torch::tensor(std::vector<int64_t>{4, 1}));
  EXPECT_EQ(to_vector(g), (std::vector<int64_t>{16, 17, 18, 19, 4, 5, 6, 7}));
}
