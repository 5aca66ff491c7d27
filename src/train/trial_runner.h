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
  /// The trial's checkpoint folder (used when train.checkpoint_every / checkpoint_minutes is
  /// set); "" = no checkpoints. With `resume` the trial continues from the folder's latest
  /// checkpoint; without, a folder left by an earlier run is removed first.
  std::string checkpoint_dir;
  bool resume = false;
};

/// Runs `spec` and returns its result; an exception inside the trial (bad data, a model that
/// does not fit, …) becomes status "failed" with its message, so a sweep goes on.
TrialResult run_trial(const TrialSpec& spec, RunContext& ctx);

}  // namespace peft::train
