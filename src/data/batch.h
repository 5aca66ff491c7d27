#pragma once
// Gathering a batch from tokenised data: one index_select of the rows, already narrowed
// to the longest row of the batch (dynamic padding), so the only copy is the batch itself.
#include <cstdint>

#include <torch/types.h>

#include "data/batch_plan.h"
#include "data/classification_data.h"
#include "data/mlm_data.h"

namespace peft::data {

struct ClassificationBatch {
  torch::Tensor ids;       // [b, l] int64, l = longest row in the batch
  torch::Tensor mask;      // [b, l] int64
  torch::Tensor labels;    // [b] int64
  torch::Tensor contrast;  // [b] bool, undefined when the data has no contrast flags
  int64_t global_size = 0; // rows of the global batch (= b outside data parallelism)
  int64_t tokens = 0;      // non-padding tokens of these rows (known on the host)

  int64_t size() const { return ids.size(0); }
};

/// Rows `indices` ([b] int64) of `data`. An empty index gives [0, 0] tensors.
ClassificationBatch gather_batch(const ClassificationData& data, const torch::Tensor& indices);
ClassificationBatch gather_batch(const ClassificationData& data, const BatchShard& shard);

/// Blocks `indices` of an MLM corpus, [b, block_size] int64 (mask them with mask_tokens).
torch::Tensor gather_blocks(const MlmData& data, const torch::Tensor& indices);

}  // namespace peft::data
