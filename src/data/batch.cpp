#include "data/batch.h"

#include "core/error.h"

namespace peft::data {

ClassificationBatch gather_batch(const ClassificationData& data, const torch::Tensor& indices) {
  PEFT_CHECK(indices.dim() == 1 && indices.scalar_type() == torch::kInt64,
             "batch indices must be a 1-D int64 tensor");
  ClassificationBatch b;
  b.global_size = indices.size(0);
  // Lengths (and so the batch width and token count) are read on the host; the rows are
  // gathered on the device the data lives on (the trainer may keep a split on the GPU).
  const torch::Tensor host_indices = indices.to(torch::kCPU);
  const torch::Tensor where = indices.to(data.ids.device(), /*non_blocking=*/true);
  int64_t longest = 0;
  if (indices.size(0) > 0) {
    auto lengths = data.lengths.index_select(0, host_indices);
    longest = lengths.max().item<int64_t>();
    b.tokens = lengths.sum().item<int64_t>();
  }
  b.labels = data.labels.index_select(0, where);
  // Narrow first: index_select then copies only the columns the batch needs.
  b.ids = data.ids.narrow(1, 0, longest).index_select(0, where);
  b.mask = data.mask.narrow(1, 0, longest).index_select(0, where);
  if (!data.contrast.empty()) {
    const torch::Tensor all = torch::from_blob(const_cast<uint8_t*>(data.contrast.data()),
                                               {static_cast<int64_t>(data.contrast.size())}, torch::kUInt8);
    b.contrast = all.index_select(0, host_indices).to(torch::kBool);
  }
  return b;
}

ClassificationBatch gather_batch(const ClassificationData& data, const BatchShard& shard) {
  ClassificationBatch b = gather_batch(data, shard.indices);
  b.global_size = shard.global_size;
  return b;
}

torch::Tensor gather_blocks(const MlmData& data, const torch::Tensor& indices) {
  PEFT_CHECK(indices.dim() == 1 && indices.scalar_type() == torch::kInt64,
             "batch indices must be a 1-D int64 tensor");
  return data.blocks.index_select(0, indices);
}

}  // namespace peft::data
