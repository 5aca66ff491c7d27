#include "train/task_source.h"

#include <torch/torch.h>

#include "data/batch.h"

namespace peft::train {

TaskSource::TaskSource(const data::Task& task, torch::Device device) : task_(task) {
  if (task_.kind == data::TaskKind::Classification) {
    train_cls_ = task_.train_cls;  // shares the host tensors; on CPU nothing is copied
    if (!device.is_cpu()) {
      train_cls_.ids = train_cls_.ids.to(device);
      train_cls_.mask = train_cls_.mask.to(device);
      train_cls_.labels = train_cls_.labels.to(device);
    }
  }
}

TaskKind TaskSource::kind() const {
  return task_.kind == data::TaskKind::Classification ? TaskKind::Classification : TaskKind::MLM;
}

int64_t TaskSource::train_examples() const {
  return task_.kind == data::TaskKind::Classification ? task_.train_cls.size() : task_.train_mlm.size();
}

int64_t TaskSource::batches_per_epoch(int64_t batch_size) const {
  // The last partial batch is dropped: every step then has a full global batch, so every
  // data-parallel rank has rows and the per-step cost is uniform.
  return train_examples() / std::max<int64_t>(1, batch_size);
}

Batch TaskSource::train_batch(int64_t epoch, int64_t index, int64_t batch_size, int rank, int dp, uint64_t seed) {
  if (!epoch_ || epoch_index_ != epoch || epoch_batch_ != batch_size || epoch_dp_ != dp || epoch_seed_ != seed) {
    data::BatchPlanOptions o;
    o.global_batch = batch_size;
    o.dp_size = dp;
    o.shuffle = true;
    o.drop_last = true;
    o.seed = seed;
    epoch_ = data::BatchPlan(train_examples(), o).epoch(epoch);
    epoch_index_ = epoch;
    epoch_batch_ = batch_size;
    epoch_dp_ = dp;
    epoch_seed_ = seed;
  }
  auto shard = epoch_->shard(index, rank);
  Batch b;
  if (task_.kind == data::TaskKind::Classification) {
    auto cb = data::gather_batch(train_cls_, shard);
    b.ids = cb.ids;
    b.mask = cb.mask;
    b.labels = cb.labels;
    b.contrast = cb.contrast;
    b.count = cb.size();
    b.tokens = cb.tokens;
  } else {
    auto blocks = data::gather_blocks(task_.train_mlm, shard.indices);
    auto masked = data::mask_tokens(blocks, task_.masking, data::train_mask_seed(seed, epoch, index, shard.offset));
    b.ids = masked.input_ids;
    b.labels = masked.labels;
    b.mask = torch::ones_like(b.ids);
    b.count = (b.labels != -100).sum().item<int64_t>();
    b.tokens = b.ids.numel();
  }
  return b;
}

const std::vector<Batch>& TaskSource::eval_batches(int64_t batch_size) {
  auto it = eval_.find(batch_size);
  if (it != eval_.end()) return it->second;
  std::vector<Batch> out;
  if (task_.kind == data::TaskKind::Classification) {
    const auto& d = task_.eval_cls;
    for (int64_t s = 0; s < d.size(); s += batch_size) {
      auto idx = torch::arange(s, std::min(d.size(), s + batch_size), torch::kLong);
      auto cb = data::gather_batch(d, idx);
      out.push_back({cb.ids, cb.mask, cb.labels, cb.contrast});
    }
  } else {
    const auto& m = task_.eval_masked;
    const int64_t n = m.input_ids.size(0);
    for (int64_t s = 0; s < n; s += batch_size) {
      const int64_t len = std::min(batch_size, n - s);
      auto ids = m.input_ids.narrow(0, s, len);
      out.push_back({ids, torch::ones_like(ids), m.labels.narrow(0, s, len), {}});
    }
  }
  return eval_.emplace(batch_size, std::move(out)).first->second;
}

}  // namespace peft::train
