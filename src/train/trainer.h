#pragma once
// The training loop of one trial: AdamW with decoupled weight decay (none on biases and
// LayerNorm), linear warm-up then decay, gradient clipping, epochs or max steps, evaluation
// every epoch or every N steps.
//
// The trainable parameters are views into one flat fp32 buffer and their .grad tensors views
// into another, which also carries the step's loss sum and example/token count. A step is then
// one all-reduce (gradients, loss and count together; no per-parameter collectives, no
// copies), a clip and an AdamW update of a few element-wise kernels per parameter group, with
// no host<->device synchronisation: the loss is read back every few steps (divergence is still
// reported at its exact step). Method behaviour enters through MethodHooks; data-parallel sync
// through GradSync.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <limits>

#include <torch/types.h>

#include "core/trial.h"
#include "model/distilbert.h"
#include "train/adamw.h"
#include "train/grad_sync.h"

namespace peft::train {

enum class TaskKind { Classification, MLM };

/// One rank's share of a batch: ids/mask [b, S]; labels [b] (classification) or [b, S] with
/// -100 at unmasked positions (MLM).
struct Batch {
  torch::Tensor ids, mask, labels;
  torch::Tensor contrast;  // optional bool [b]: synthetic contrast-clause examples
  // Known on the host, so the trainer never reads batch values back from a device; -1 =
  // unknown (the trainer counts from the tensors, which must then be on the CPU).
  int64_t count = -1;      // examples (classification) or masked tokens (MLM)
  int64_t tokens = -1;     // non-padding tokens
  // MLM: flat indices (into b·S) of the masked positions, the only rows the vocabulary
  // projection is computed for. The trainer fills it from host labels when undefined.
  torch::Tensor positions;
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual TaskKind kind() const = 0;
  virtual int64_t train_examples() const = 0;
  /// Global batches per epoch for global batch size `batch_size` (last partial batch dropped
  /// when smaller than the data-parallel group).
  virtual int64_t batches_per_epoch(int64_t batch_size) const = 0;
  /// Rank `rank`'s contiguous shard of global batch `index` of `epoch` (shuffled from `seed`).
  virtual Batch train_batch(int64_t epoch, int64_t index, int64_t batch_size, int rank, int dp, uint64_t seed) = 0;
  /// Evaluation batches of the whole evaluation split, identical on every call (MLM masks
  /// from a fixed seed so perplexity is comparable between trials).
  virtual const std::vector<Batch>& eval_batches(int64_t batch_size) = 0;
};

/// Method hooks: the trainer calls them, it never asks which method is running.
struct MethodHooks {
  std::function<torch::Tensor()> penalty;                       // extra loss term (e.g. L1), or empty
  /// Masks, pruning, proximal steps; `lr_scale` = the schedule's factor on the learning rates.
  std::function<void(int64_t step, int64_t total_steps, double lr_scale)> after_optimizer_step;
  /// Tensors the method changes while training besides the trainable parameters (Sparse
  /// LoRA's masks), by name: saved in mid-trial checkpoints and restored in place.
  std::function<std::vector<std::pair<std::string, torch::Tensor>>()> training_state;
  /// (trainable parameter, its 0/1 mask) pairs (Sparse LoRA). The trainer re-points every mask
  /// into one flat buffer aligned with the parameters, so that a step masks the whole gradient
  /// before clipping, and AdamW's states, with one kernel each: a pruned weight gets no update,
  /// no say in the clip norm and no optimizer state. The masks stay the method's to change.
  std::function<std::vector<std::pair<torch::Tensor, torch::Tensor>>()> gradient_masks;
};

/// Mid-trial checkpoints of one trial (train.checkpoint_every / checkpoint_minutes say when).
struct CheckpointOptions {
  std::string dir;        // the trial's checkpoint folder; "" = none
  std::string trial_id;
  bool resume = false;    // continue from the folder's latest checkpoint when it matches
};

struct ParamGroup {
  std::string name;
  std::vector<torch::Tensor> params;
  double lr = 1e-3;
  double weight_decay = 0.0;
};

struct EvalResult {
  double loss = 0, accuracy = std::numeric_limits<double>::quiet_NaN(), f1 = std::numeric_limits<double>::quiet_NaN(),
         perplexity = std::numeric_limits<double>::quiet_NaN(), contrast_accuracy = std::numeric_limits<double>::quiet_NaN();
  int64_t examples = 0;
};

/// A logged step (every total/200 steps and the last), as fit() reports it.
struct Progress {
  int64_t step, total_steps;
  double loss, samples_per_second, eta_seconds;
  double lr = 0;  // the first parameter group's learning rate at this step
};

/// An evaluation, as fit() reports it (after it is recorded in the trial's curves).
struct EvalEvent {
  int64_t step, total_steps;
  double epoch;
  EvalResult eval;
};

struct FitStats {
  double train_seconds = 0;
  int64_t steps = 0, samples = 0, tokens = 0;
  bool diverged = false, interrupted = false;
  int64_t diverged_step = -1;
  int64_t resumed_from = 0;   // the checkpoint's step when the trial continued from one
  int64_t checkpoints = 0;    // checkpoints written
};

class Trainer {
 public:
  Trainer(model::DistilBert& model, TaskKind kind, std::vector<ParamGroup> groups, TrainSettings settings,
          MethodHooks hooks, GradSync& sync, torch::Device device, uint64_t seed);
  ~Trainer();

  /// Trains, filling `result`'s curves; stops early when `stop()` returns true (signal).
  FitStats fit(BatchSource& data, TrialResult& result, const std::function<bool()>& stop = {},
               const std::function<void(const Progress&)>& progress = {},
               const std::function<void(const EvalEvent&)>& on_eval = {});
  EvalResult evaluate(BatchSource& data);
  /// Splits `params` into decay / no-decay groups (biases, LayerNorm weights: no decay).
  static std::vector<ParamGroup> decay_groups(const std::string& name,
                                              const std::vector<std::pair<std::string, torch::Tensor>>& params,
                                              double lr, double weight_decay);
  int64_t total_steps(BatchSource& data) const;
  void set_checkpointing(CheckpointOptions options) { ckpt_ = std::move(options); }
  /// The most recent evaluation of fit() (all fields NaN before the first).
  const EvalResult& last_eval() const { return last_eval_; }
  const FlatAdamW& optimizer() const { return *optimizer_; }

 private:
  /// Summed (not averaged) loss of a batch on the device.
  torch::Tensor loss_sum(const Batch& b);
  void record_eval(BatchSource& data, TrialResult& result, int64_t step, double epoch);
  const std::function<void(const EvalEvent&)>* on_eval_ = nullptr;  // fit()'s, while it runs
  int64_t total_ = 0;
  CheckpointOptions ckpt_;
  /// The evaluation batches on the trainer's device (the host ones on CPU).
  const std::vector<Batch>& device_eval_batches(BatchSource& data);

  model::DistilBert& model_;
  TaskKind kind_;
  std::vector<ParamGroup> groups_;
  TrainSettings settings_;
  MethodHooks hooks_;
  GradSync& sync_;
  torch::Device device_;
  uint64_t seed_;
  bool bf16_ = false;
  std::unique_ptr<FlatAdamW> optimizer_;
  torch::Tensor flat_params_;                // every trainable parameter is a view into it
  torch::Tensor flat_grad_;                  // [gradients..., loss sum, count]: one all-reduce
  torch::Tensor grads_, loss_slot_, count_slot_, clip_scale_;  // views / scratch of the above
  torch::Tensor flat_mask_;                  // undefined, or the gradient masks aligned with flat_params_
  EvalResult last_eval_;
  const std::vector<Batch>* eval_host_ = nullptr;
  std::vector<Batch> eval_device_;
};

}  // namespace peft::train
