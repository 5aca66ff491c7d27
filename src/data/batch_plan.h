#pragma once
// Which rows each data-parallel rank trains on, step by step.
//
// An epoch's order is a permutation of 0..N-1 drawn from (seed, epoch) with a hand-written
// Fisher–Yates over std::mt19937_64 (data/rng.h), so every rank, platform and standard
// library computes the same order without communicating. The order is cut into global
// batches of `global_batch` rows (the last one shorter unless drop_last), and each global
// batch into dp contiguous shards: rank r gets rows [begin_r, end_r) where the first
// (size % dp) ranks hold one row more than the others. Shard sizes therefore differ by at
// most one, and a rank's shard can be empty when a (final) global batch has fewer rows than
// dp ranks. The trainer must weight by global_size: sum the per-row losses of its shard,
// divide by the global batch size, and all-reduce with a sum; then the gradient equals the
// single-process gradient of the whole global batch.
#include <cstdint>
#include <utility>

#include <torch/types.h>

namespace peft::data {

struct BatchPlanOptions {
  int64_t global_batch = 32;  // rows per optimizer step, all ranks together
  int dp_size = 1;            // data-parallel ranks
  bool shuffle = true;        // false: rows in file order (evaluation)
  bool drop_last = false;     // drop the final global batch when it is short
  uint64_t seed = 0;
};

/// One rank's rows of one global batch.
struct BatchShard {
  torch::Tensor indices;    // [n_r] int64: a view into the epoch order, no copy
  int64_t global_size = 0;  // rows in the whole global batch (all ranks)
  int64_t offset = 0;       // where this shard starts in the global batch
  int64_t step = 0;         // global batch index within the epoch
};

class BatchPlan;

/// The order of one epoch and its shards.
class Epoch {
 public:
  int64_t steps() const { return steps_; }
  const torch::Tensor& order() const { return order_; }
  /// Rank `rank`'s rows of global batch `step` (0 <= step < steps()).
  BatchShard shard(int64_t step, int rank) const;

 private:
  friend class BatchPlan;
  torch::Tensor order_;
  int64_t steps_ = 0, global_batch_ = 0, rows_ = 0;
  int dp_ = 1;
};

class BatchPlan {
 public:
  BatchPlan(int64_t num_examples, BatchPlanOptions opts);

  int64_t num_examples() const { return n_; }
  /// Global batches (optimizer steps) per epoch.
  int64_t steps_per_epoch() const;
  const BatchPlanOptions& options() const { return opts_; }

  /// The permutation of epoch `epoch` (identity without shuffle), [N] int64.
  torch::Tensor epoch_order(int64_t epoch) const;
  Epoch epoch(int64_t epoch) const;

  /// [begin, end) of rank `rank` of `dp` in a global batch of `size` rows.
  static std::pair<int64_t, int64_t> shard_range(int64_t size, int dp, int rank);

 private:
  int64_t n_;
  BatchPlanOptions opts_;
};

}  // namespace peft::data
