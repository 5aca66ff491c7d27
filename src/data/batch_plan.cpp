#include "data/batch_plan.h"

#include "core/error.h"
#include "data/rng.h"

namespace peft::data {

BatchPlan::BatchPlan(int64_t num_examples, BatchPlanOptions opts) : n_(num_examples), opts_(opts) {
  if (n_ < 0) throw std::logic_error("BatchPlan: negative number of examples");
  if (opts_.global_batch <= 0) throw_input("batch size must be positive, got {}", opts_.global_batch);
  if (opts_.dp_size <= 0) throw_input("dp must be positive, got {}", opts_.dp_size);
}

int64_t BatchPlan::steps_per_epoch() const {
  const int64_t b = opts_.global_batch;
  return opts_.drop_last ? n_ / b : (n_ + b - 1) / b;
}

torch::Tensor BatchPlan::epoch_order(int64_t epoch) const {
  torch::Tensor order = torch::arange(n_, torch::kInt64);
  if (!opts_.shuffle || n_ < 2) return order;
  int64_t* p = order.data_ptr<int64_t>();
  Rng rng(derive_seed(opts_.seed, static_cast<uint64_t>(epoch)));
  for (int64_t i = n_ - 1; i > 0; --i)
    std::swap(p[i], p[static_cast<int64_t>(rng.below(static_cast<uint64_t>(i + 1)))]);
  return order;
}

Epoch BatchPlan::epoch(int64_t epoch) const {
  Epoch e;
  e.order_ = epoch_order(epoch);
  e.steps_ = steps_per_epoch();
  e.global_batch_ = opts_.global_batch;
  e.rows_ = n_;
  e.dp_ = opts_.dp_size;
  return e;
}

std::pair<int64_t, int64_t> BatchPlan::shard_range(int64_t size, int dp, int rank) {
  PEFT_CHECK(dp > 0 && rank >= 0 && rank < dp, "rank {} outside 0..{}", rank, dp - 1);
  const int64_t base = size / dp, extra = size % dp;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

BatchShard Epoch::shard(int64_t step, int rank) const {
  PEFT_CHECK(step >= 0 && step < steps_, "step {} outside the epoch's {} steps", step, steps_);
  const int64_t start = step * global_batch_;
  const int64_t size = std::min(global_batch_, rows_ - start);
  const auto [begin, end] = BatchPlan::shard_range(size, dp_, rank);
  BatchShard s;
  s.indices = order_.narrow(0, start + begin, end - begin);
  s.global_size = size;
  s.offset = begin;
  s.step = step;
  return s;
}

}  // namespace peft::data
