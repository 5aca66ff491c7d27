#pragma once
// A trial's method on its base model: the sweep's method settings as an adapters::MethodConfig
// (pruning schedule in steps), QLoRA's quantized base and compute dtype, bf16 frozen weights,
// the optimizer's parameter groups and the method's hooks into the trainer.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "adapters/method.h"
#include "core/trial.h"
#include "model/distilbert.h"
#include "train/trainer.h"

namespace peft::train {

/// The method settings of `spec` for a run of `total_steps` (Sparse LoRA's schedule fractions
/// become steps); validated.
adapters::MethodConfig method_config(const TrialSpec& spec, int64_t total_steps, bool train_mlm_head);

/// methods.qlora.compute_dtype as it runs: "auto" follows the precision (as HF users set
/// bnb_4bit_compute_dtype); float16 needs a GPU.
c10::ScalarType qlora_compute_dtype(const std::string& setting, bool bf16, const torch::Device& device);

/// QLoRA's base transform for adapters::apply_method: each dense base layer → NF4 in `compute_dtype`.
adapters::BaseTransform nf4_base_transform(c10::ScalarType compute_dtype);

/// Casts the weight and bias of every frozen dense encoder linear (bare, or the base layer of
/// an adapter) to `dtype` (bf16 trials: what HF users get from torch_dtype=bfloat16, so
/// autocast re-casts no frozen weight per forward). Trainable weights are left alone.
/// Returns the number of weight elements cast.
int64_t cast_frozen_linears(model::DistilBert& m, c10::ScalarType dtype);

/// The optimizer's groups: adapters (everything, for full fine-tuning) at train.lr, task heads
/// at train.head_lr (0 = lr); no weight decay on biases and LayerNorm weights.
/// Throws InputError when nothing is trainable.
std::vector<ParamGroup> parameter_groups(model::DistilBert& m, adapters::Method method, const TrialSpec& spec);

/// The method's hooks: its penalty (L1) and its after-step work (masks, pruning, the proximal
/// L1 step at this step's learning rate).
MethodHooks method_hooks(model::DistilBert& m, double lr);

}  // namespace peft::train
