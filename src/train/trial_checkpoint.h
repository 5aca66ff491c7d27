#pragma once
// Mid-trial checkpoints: everything the trainer needs to continue a trial bitwise where it
// stopped — the trainable parameters (the flat buffer), AdamW's states and step count, the
// method's training state (Sparse LoRA's masks), each rank's RNG state, the curves and
// counters so far. The data position is the step: batches are a pure function of (seed,
// epoch, index).
//
// Layout of a trial's folder (`dir`, one per trial id, on storage every rank of the group
// sees, like the results file):
//   rank<r>.step<s>.safetensors   rank 0: the shared state + its RNG; rank r > 0: its RNG
//   latest                        text: the step of the newest complete set (written last,
//                                 atomically, after every rank has written its file)
// A crash while writing leaves `latest` at the previous complete set; stale files are
// removed at the next checkpoint.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "core/trial.h"

namespace peft::train {

struct TrainerSnapshot {
  int64_t step = 0;              // optimizer steps done
  int64_t optimizer_steps = 0;   // AdamW's own count (bias correction)
  int64_t loss_n = 0, samples = 0, tokens = 0;
  double loss_acc = 0, train_seconds = 0;
  torch::Tensor params, exp_avg, exp_avg_sq;  // shared state (rank 0 writes it)
  torch::Tensor rng;                          // this rank's generator state(s), uint8
  std::vector<std::pair<std::string, torch::Tensor>> method_state;
};

/// What a checkpoint must match to be continued: the trial, its group size and length.
struct CheckpointKey {
  std::string trial_id;
  int dp = 1;
  int64_t total_steps = 0;
  int64_t numel = 0;  // trainable elements
};

/// Writes this rank's file for `snap.step` (rank 0 with the shared state and `result`'s curves).
void write_checkpoint_file(const std::string& dir, int rank, const CheckpointKey& key, const TrainerSnapshot& snap,
                           const TrialResult& result);
/// Rank 0, after every rank has written: points `latest` at `step` and removes older files.
void publish_checkpoint(const std::string& dir, int64_t step);
/// The step of the newest complete checkpoint in `dir`, if any.
std::optional<int64_t> latest_checkpoint(const std::string& dir);
/// Reads rank 0's shared state and this rank's RNG for `step` into `snap` (tensors on the CPU)
/// and the curves into `result`. Returns false, with the reason in `why`, when a file is
/// missing or does not match `key`.
bool read_checkpoint(const std::string& dir, int rank, int64_t step, const CheckpointKey& key, TrainerSnapshot& snap,
                     TrialResult& result, std::string& why);
/// Removes a trial's checkpoint folder (a completed trial's, or a stale one).
void remove_checkpoints(const std::string& dir);

/// The generator state(s) this rank's dropout draws from: the CPU one, plus the CUDA one of
/// the current device when `device` is a GPU.
torch::Tensor rng_state(const torch::Device& device);
void set_rng_state(const torch::Device& device, const torch::Tensor& state);

}  // namespace peft::train
