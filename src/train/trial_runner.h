#pragma once
// One trial end to end: data → base model → method → training → evaluation → measurements.
#include <functional>
#include <string>

#include <torch/types.h>

#include "core/trial.h"
#include "train/grad_sync.h"
#include "train/trainer.h"

namespace peft::train {

struct RunContext {
  GradSync* sync = nullptr;   // null: single process
  int local_rank = 0;         // GPU choice
  std::function<bool()> stop; // set when SIGTERM/SIGINT arrived
  std::function<void(const Progress&)> progress;  // every logged step
  std::function<void(const EvalEvent&)> on_eval;  // every evaluation
  bool measure_inference = true;  // the rank that reports does; others skip
};

/// Runs `spec` and returns its result; an exception inside the trial (bad data, a model that
/// does not fit, …) becomes status "failed" with its message, so a sweep goes on.
TrialResult run_trial(const TrialSpec& spec, RunContext& ctx);

/// Casts the weight and bias of every frozen dense encoder linear (bare, or the base layer of
/// an adapter) to `dtype` (bf16 trials: what HF users get from torch_dtype=bfloat16, so
/// autocast re-casts no frozen weight per forward). Trainable weights are left alone.
/// Returns the number of weight elements cast.
int64_t cast_frozen_linears(model::DistilBert& m, c10::ScalarType dtype);

/// The tiny preset's base, MLM-pretrained on the synthetic corpus and cached in
/// `settings.cache_dir` (one writer, others wait on a file lock). Returns the folder.
std::string ensure_pretrained_tiny(const ModelSettings& settings, uint64_t seed);

}  // namespace peft::train
