// Sparse LoRA: exact pruning counts, deterministic ties, masks that survive optimizer steps,
// structured channels, the L1 forms and Zhu & Gupta's cubic schedule.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "adapters/sparse_lora.h"
#include "adapter_test_util.h"
#include "core/error.h"

using namespace peft;
using namespace peft::adapters;

namespace {

using peft::testing::frozen_dense;

std::shared_ptr<SparseLoraLinear> make(int64_t in, int64_t out, int64_t r, const SparseOptions& s, uint64_t seed) {
  auto l = std::make_shared<SparseLoraLinear>(frozen_dense(in, out, seed), LoraOptions{r, 2.0 * r, 0.0, false}, s);
  torch::NoGradGuard g;
  torch::manual_seed(seed + 100);
  l->lora_B().normal_();  // as after some training: B is zero at the start
  return l;
}

int64_t zeros(const torch::Tensor& t) { return t.numel() - t.count_nonzero().item<int64_t>(); }

/// A few AdamW steps on a random regression target, calling the hook after each.
void train(SparseLoraLinear& l, int64_t steps, int64_t first_step = 1, double lr = 1e-2) {
  torch::optim::AdamW opt(l.adapter_parameters(), torch::optim::AdamWOptions(lr).weight_decay(0.01));
  torch::manual_seed(42);
  auto x = torch::randn({16, l.in_features()});
  auto target = torch::randn({16, l.out_features()});
  for (int64_t s = first_step; s < first_step + steps; ++s) {
    opt.zero_grad();
    auto loss = (l.forward(x) - target).pow(2).mean();
    if (auto p = l.penalty(); p.defined()) loss = loss + p;
    loss.backward();
    opt.step();
    l.after_optimizer_step(s, lr);
  }
}

}  // namespace

TEST(SparseSchedule, CubicValuesFollowZhuGupta) {
  // s_t = s_f + (s_i − s_f)(1 − (t − t0)/(n·Δt))³ with t0 = 10, n·Δt = 40.
  EXPECT_DOUBLE_EQ(cubic_sparsity(0.0, 0.8, 10, 50, 10), 0.0);
  EXPECT_NEAR(cubic_sparsity(0.0, 0.8, 10, 50, 20), 0.8 - 0.8 * 0.421875, 1e-12);
  EXPECT_NEAR(cubic_sparsity(0.0, 0.8, 10, 50, 30), 0.7, 1e-12);
  EXPECT_NEAR(cubic_sparsity(0.2, 0.8, 10, 50, 40), 0.8 - 0.6 / 64.0, 1e-12);
  EXPECT_DOUBLE_EQ(cubic_sparsity(0.0, 0.8, 10, 50, 50), 0.8);
  EXPECT_DOUBLE_EQ(cubic_sparsity(0.0, 0.8, 10, 50, 99), 0.8);

  SparseOptions o;
  o.schedule = PruneSchedule::Cubic;
  o.target_sparsity = 0.8;
  o.start_step = 10;
  o.end_step = 45;
  o.every = 10;
  o.validate();
  EXPECT_FALSE(o.sparsity_at(9));
  EXPECT_TRUE(o.sparsity_at(10));
  EXPECT_FALSE(o.sparsity_at(15));
  EXPECT_NEAR(*o.sparsity_at(20), cubic_sparsity(0.0, 0.8, 10, 45, 20), 1e-12);
  EXPECT_TRUE(o.sparsity_at(40));
  EXPECT_DOUBLE_EQ(*o.sparsity_at(45), 0.8);  // the ramp's end even off the Δt grid
  EXPECT_FALSE(o.sparsity_at(50));
  // Monotone non-decreasing along the schedule.
  double prev = -1;
  for (int64_t t = 0; t <= 60; ++t)
    if (auto s = o.sparsity_at(t)) {
      EXPECT_GE(*s, prev);
      prev = *s;
    }
}

TEST(SparseSchedule, OneShotAndValidation) {
  SparseOptions o;
  o.schedule = PruneSchedule::OneShot;
  o.target_sparsity = 0.5;
  o.prune_step = 30;
  EXPECT_FALSE(o.sparsity_at(29));
  EXPECT_DOUBLE_EQ(*o.sparsity_at(30), 0.5);
  EXPECT_FALSE(o.sparsity_at(31));
  o.prune_step = 0;  // B is still zero then
  EXPECT_THROW(o.validate(), InputError);
  SparseOptions bad;
  bad.target_sparsity = 1.0;
  EXPECT_THROW(bad.validate(), InputError);
  bad.target_sparsity = 0.5;
  bad.schedule = PruneSchedule::Cubic;
  bad.start_step = 20;
  bad.end_step = 10;
  EXPECT_THROW(bad.validate(), InputError);
  EXPECT_THROW(parse_prune_schedule("linear"), InputError);
  EXPECT_EQ(parse_prune_granularity("structured"), PruneGranularity::Structured);
}

TEST(SparseLora, UnstructuredPrunesExactlyTheSmallest) {
  for (double s : {0.0, 0.1, 0.3, 0.5, 0.77, 0.9}) {
    auto l = make(13, 11, 4, {}, 1);
    auto A = l->lora_A().clone(), B = l->lora_B().clone();
    l->prune_to(s);
    for (auto [w, orig] : {std::pair{l->lora_A(), A}, std::pair{l->lora_B(), B}}) {
      const int64_t n = w.numel(), want = std::llround(s * n);
      EXPECT_EQ(zeros(w), want) << "s=" << s;
      EXPECT_LE(std::abs(static_cast<double>(zeros(w)) - s * n), 1.0);
      if (want > 0 && want < n) {
        auto pruned = orig.abs().masked_select(w == 0), kept = orig.abs().masked_select(w != 0);
        EXPECT_LE(pruned.max().item<double>(), kept.min().item<double>());
        EXPECT_TRUE(torch::equal(kept, orig.masked_select(w != 0).abs()));  // survivors untouched
      }
    }
  }
}

TEST(SparseLora, TiesAreBrokenByIndex) {
  auto l = make(10, 6, 2, {}, 2);
  {
    torch::NoGradGuard g;
    l->lora_A().fill_(0.25);
  }
  l->prune_to(0.45);  // 9 of 20
  auto flat = l->lora_A().view({-1});
  EXPECT_EQ(zeros(flat.narrow(0, 0, 9)), 9);
  EXPECT_EQ(zeros(flat.narrow(0, 9, 11)), 0);
}

TEST(SparseLora, MasksSurviveOptimizerSteps) {
  SparseOptions o;
  o.schedule = PruneSchedule::OneShot;
  o.target_sparsity = 0.6;
  o.prune_step = 5;
  auto l = make(24, 16, 4, o, 3);
  train(*l, 5);
  const auto maskA = l->mask_A().clone(), maskB = l->mask_B().clone();
  EXPECT_EQ(zeros(maskA), std::llround(0.6 * 96));
  EXPECT_EQ(zeros(maskB), std::llround(0.6 * 64));

  // One more AdamW step moves the pruned weights (momentum, weight decay) …
  torch::optim::AdamW opt(l->adapter_parameters(), torch::optim::AdamWOptions(1e-2));
  auto x = torch::randn({8, 24});
  opt.zero_grad();
  l->forward(x).pow(2).sum().backward();
  opt.step();
  EXPECT_GT(l->lora_A().masked_select(maskA == 0).abs().sum().item<double>(), 0.0);
  // … and the hook zeroes them again, with the same masks.
  l->after_optimizer_step(6, 1e-2);
  EXPECT_TRUE(torch::equal(l->mask_A(), maskA));
  EXPECT_EQ(l->lora_A().masked_select(maskA == 0).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(l->lora_B().masked_select(maskB == 0).abs().sum().item<double>(), 0.0);
  train(*l, 20, 7);
  EXPECT_EQ(zeros(l->lora_A()), zeros(maskA));
  EXPECT_EQ(zeros(l->lora_B()), zeros(maskB));
  // Masks are buffers with torch.nn.utils.prune's names.
  auto buffers = l->named_buffers().keys();
  EXPECT_EQ(buffers, (std::vector<std::string>{"lora_A.weight_mask", "lora_B.weight_mask"}));
}

TEST(SparseLora, CubicScheduleReachesTheTargetWithinOneWeight) {
  SparseOptions o;
  o.schedule = PruneSchedule::Cubic;
  o.target_sparsity = 0.7;
  o.start_step = 3;
  o.end_step = 23;
  o.every = 4;
  auto l = make(20, 15, 6, o, 4);
  train(*l, 12);
  const double mid = cubic_sparsity(0, 0.7, 3, 23, 11);
  EXPECT_EQ(zeros(l->lora_A()), std::llround(mid * 120));
  train(*l, 20, 13);
  for (const auto& s : l->sparsity_stats()) {
    EXPECT_LE(std::abs((s.total - s.nonzero) - 0.7 * s.total), 1.0) << s.name;
    EXPECT_NEAR(s.sparsity(), 0.7, 1.0 / s.total) << s.name;
  }
}

TEST(SparseLora, StructuredPrunesWholeRankChannels) {
  SparseOptions o;
  o.granularity = PruneGranularity::Structured;
  auto l = make(30, 20, 8, o, 5);
  const auto A = l->lora_A().clone(), B = l->lora_B().clone();
  auto score = A.norm(2, {1}) * B.norm(2, {0});
  l->prune_to(0.5);
  auto rows_dead = (l->lora_A().abs().sum(1) == 0);
  auto cols_dead = (l->lora_B().abs().sum(0) == 0);
  EXPECT_TRUE(torch::equal(rows_dead, cols_dead));  // row i of A goes with column i of B
  EXPECT_EQ(rows_dead.sum().item<int64_t>(), 4);
  // The removed channels are the four with the smallest ‖A_i‖·‖B_:,i‖.
  auto order = std::get<1>(score.sort());
  for (int64_t i = 0; i < 8; ++i) EXPECT_EQ(rows_dead[order[i].item<int64_t>()].item<bool>(), i < 4) << "rank " << i;
  // Kept channels are whole.
  auto alive = rows_dead.logical_not();
  EXPECT_EQ(l->lora_A().index({alive}).count_nonzero().item<int64_t>(), A.index({alive}).count_nonzero().item<int64_t>());
  // ΔW is exactly the sum over the kept channels.
  auto keep = alive.to(torch::kFloat);
  EXPECT_TRUE(torch::allclose(l->delta_weight(), torch::matmul(B * keep, A) * 2.0, 1e-6, 1e-6));
  // Within one channel of the target: round(0.3·8) = 2 → already 4, masks never shrink.
  l->prune_to(0.3);
  EXPECT_EQ((l->lora_A().abs().sum(1) == 0).sum().item<int64_t>(), 4);
  l->prune_to(0.8);
  EXPECT_EQ((l->lora_A().abs().sum(1) == 0).sum().item<int64_t>(), 6);
}

TEST(SparseLora, L1PenaltyAndProximalStep) {
  SparseOptions o;
  o.l1_lambda = 0.01;
  auto l = make(10, 8, 2, o, 6);
  auto p = l->penalty();
  ASSERT_TRUE(p.defined());
  EXPECT_NEAR(p.item<double>(), 0.01 * (l->lora_A().abs().sum() + l->lora_B().abs().sum()).item<double>(), 1e-6);
  p.backward();
  EXPECT_TRUE(torch::allclose(l->lora_A().grad(), 0.01 * l->lora_A().sign()));

  o.l1_proximal = true;
  auto q = make(10, 8, 2, o, 6);
  EXPECT_FALSE(q->penalty().defined());
  auto A = q->lora_A().clone();
  q->after_optimizer_step(1, 2.0);  // threshold lr·λ = 0.02
  auto expect = A.sign() * (A.abs() - 0.02).clamp_min(0.0);
  EXPECT_TRUE(torch::allclose(q->lora_A(), expect, 0, 1e-7));
  EXPECT_GT(zeros(q->lora_A()), 0);
}

TEST(SparseLora, RestoreMasksFromZeros) {
  auto l = make(12, 12, 3, {}, 7);
  {
    torch::NoGradGuard g;
    l->lora_A().index_put_({0}, 0.0);
  }
  l->restore_masks_from_zeros();
  EXPECT_EQ(zeros(l->mask_A()), 12);
  EXPECT_EQ(zeros(l->mask_B()), 0);
}

TEST(SparseLora, DeadChannelsLeaveTheComputation) {
  // After a structured prune the unmerged forward runs at the live rank; its outputs and
  // gradients are those of the full-rank product with the dead channels zero.
  SparseOptions o;
  o.granularity = PruneGranularity::Structured;
  auto l = make(24, 16, 8, o, 11);
  EXPECT_EQ(l->live_rank(), 8);
  l->prune_to(0.5);
  EXPECT_EQ(l->live_rank(), 4);
  torch::manual_seed(3);
  auto x = torch::randn({5, 24});
  auto out = l->forward(x);
  out.pow(2).sum().backward();
  auto A = l->lora_A().detach().clone().requires_grad_(true), B = l->lora_B().detach().clone().requires_grad_(true);
  auto ref = l->base()->forward(x) + torch::matmul(torch::matmul(x, A.t()) * l->scaling(), B.t());
  ref.pow(2).sum().backward();
  EXPECT_TRUE(torch::allclose(out, ref, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(l->lora_A().grad(), A.grad(), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(l->lora_B().grad(), B.grad(), 1e-5, 1e-5));
  auto dead = (l->mask_A().sum(1) == 0);
  EXPECT_EQ(l->lora_A().grad().index({dead}).count_nonzero().item<int64_t>(), 0);  // no gradient reaches a dead channel
  EXPECT_EQ(l->lora_B().grad().t().index({dead}).count_nonzero().item<int64_t>(), 0);

  // A mask written by a load (copy_) is seen at the next forward pass.
  {
    torch::NoGradGuard g;
    torch::Tensor m = l->mask_A();  // the same storage
    m.index_put_({0}, 0.0);
  }
  const int64_t expect = 8 - (l->mask_A().sum(1) == 0).sum().item<int64_t>();
  EXPECT_EQ(l->live_rank(), expect);

  // Every channel pruned: the adapter adds nothing, and backward still gives (zero) gradients.
  auto z = make(24, 16, 8, o, 12);
  z->prune_to(0.95);  // round(0.95·8) = 8 channels
  EXPECT_EQ(z->live_rank(), 0);
  auto zo = z->forward(x);
  EXPECT_TRUE(torch::allclose(zo, z->base()->forward(x), 1e-6, 1e-6));
  zo.sum().backward();
  ASSERT_TRUE(z->lora_A().grad().defined());
  EXPECT_EQ(z->lora_A().grad().count_nonzero().item<int64_t>(), 0);

  // Merged, the base weight carries the live channels: the same outputs as unmerged.
  torch::NoGradGuard g;
  auto un = l->forward(x);
  l->merge();
  EXPECT_TRUE(torch::allclose(l->forward(x), un, 1e-5, 1e-5));
}
