#pragma once
// Inference timing of a trained trial: latency at batch 1 and throughput at the inference
// batch, after warm-up, the median of a few repeats; and the model's size in bytes.
#include <cstdint>
#include <limits>

#include <torch/types.h>

#include "model/distilbert.h"
#include "train/trainer.h"

namespace peft::train {

struct InferenceStats {
  double ms_batch1 = std::numeric_limits<double>::quiet_NaN();
  double samples_per_second = std::numeric_limits<double>::quiet_NaN();
  torch::Tensor probe;  // outputs on the first batch, to compare merged with unmerged
};

/// Latency at batch 1 (the first evaluation rows one by one, each trimmed to its length) and
/// throughput at `batch` (up to 4 evaluation batches), median of `repeats`.
InferenceStats measure_inference(model::DistilBert& m, TaskKind kind, BatchSource& data, const torch::Device& dev,
                                 int64_t batch, int64_t repeats);

/// Bytes of every parameter and buffer of `m` (NF4 codes and scales included).
int64_t model_bytes(model::DistilBert& m);

}  // namespace peft::train
