#pragma once
// BatchSource over a loaded data::Task (tokenised once): shuffled, sharded global batches,
// MLM masks drawn per step from (seed, epoch, step) and fixed-seed evaluation masks.
#include <map>
#include <optional>

#include "data/batch_plan.h"
#include "data/dataset.h"
#include "train/trainer.h"

namespace peft::train {

class TaskSource : public BatchSource {
 public:
  /// Classification splits are gathered on `device`: the training split is copied there once,
  /// so a step moves a few indices instead of the batch. MLM batches (masked on the host) and
  /// evaluation batches are host tensors.
  explicit TaskSource(const data::Task& task, torch::Device device = torch::kCPU);
  TaskKind kind() const override;
  int64_t train_examples() const override;
  int64_t batches_per_epoch(int64_t batch_size) const override;
  Batch train_batch(int64_t epoch, int64_t index, int64_t batch_size, int rank, int dp, uint64_t seed) override;
  const std::vector<Batch>& eval_batches(int64_t batch_size) override;

 private:
  const data::Task& task_;
  data::ClassificationData train_cls_;  // task_.train_cls with ids / mask / labels on the device
  std::optional<data::Epoch> epoch_;
  int64_t epoch_index_ = -1, epoch_batch_ = -1;
  int epoch_dp_ = -1;
  uint64_t epoch_seed_ = 0;
  std::map<int64_t, std::vector<Batch>> eval_;
};

}  // namespace peft::train
