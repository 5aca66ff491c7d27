#pragma once
// The adapter interface: a trainable update wrapped around a frozen linear layer.
//
// An AdapterLinear is itself a model::LinearBase, so it replaces the layer it wraps in place
// (model::LinearSlot::set) and the encoder never knows. The wrapped layer is registered as the
// submodule "base_layer", which gives the live parameter names HF PEFT uses
// (`…q_lin.base_layer.weight`, `…q_lin.lora_A.weight`, `…q_lin.hira_A`). The base can be any
// LinearBase: a DenseLinear today, an NF4-quantized layer for QLoRA (src/quant) later — the
// adapters only read it through forward() and effective_weight(); merge() is the one operation
// that needs a writable dense weight.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "model/linear.h"

namespace peft::adapters {

/// Named tensors: (name, tensor), in a fixed order.
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

/// Non-zero and total element counts of one tensor.
struct TensorSparsity {
  std::string name;
  int64_t nonzero = 0;
  int64_t total = 0;
  double sparsity() const { return total ? 1.0 - static_cast<double>(nonzero) / static_cast<double>(total) : 0.0; }
};

/// A module holding one parameter called "weight", so that adapter matrices get PEFT's
/// `lora_A.weight` / `lora_B.weight` names.
class WeightHolder : public torch::nn::Module {
 public:
  explicit WeightHolder(torch::Tensor w) { weight = register_parameter("weight", std::move(w)); }
  torch::Tensor weight;
};

class AdapterLinear : public model::LinearBase {
 public:
  explicit AdapterLinear(std::shared_ptr<model::LinearBase> base);

  /// "lora", "sparse_lora", "hira".
  virtual std::string kind() const = 0;
  virtual int64_t rank() const = 0;

  // model::LinearBase: sizes and bias are the base's; the effective weight includes the update.
  int64_t in_features() const override { return base_->in_features(); }
  int64_t out_features() const override { return base_->out_features(); }
  torch::Tensor bias() const override { return base_->bias(); }
  torch::Tensor effective_weight() const override;

  /// The update ΔW [out, in] such that the adapted weight is W0 + ΔW (no grad).
  virtual torch::Tensor delta_weight() const = 0;

  /// Folds the update into the base weight (forward becomes the base's alone) / takes it out again.
  /// Both need a dense base (DenseLinear); other bases throw std::logic_error. Training while
  /// merged is not supported: the adapter parameters get no gradient then.
  virtual void merge() = 0;
  virtual void unmerge() = 0;
  bool merged() const { return merged_; }

  /// The adapter's own trainable tensors (not the base's).
  virtual std::vector<torch::Tensor> adapter_parameters() const = 0;

  /// Tensors in HF PEFT's layout, by suffix relative to the module path ("lora_A.weight", "hira_A").
  virtual NamedTensors peft_tensors() const = 0;
  /// The suffixes and shapes peft_tensors() has; what load_peft_tensors() expects.
  virtual std::vector<std::pair<std::string, std::vector<int64_t>>> peft_shapes() const = 0;
  /// Copies tensors (by suffix) into the adapter. Every suffix of peft_shapes() must be present
  /// with its exact shape; errors (peft::InputError) name `key_prefix + suffix`.
  void load_peft_tensors(const std::map<std::string, torch::Tensor>& by_suffix, const std::string& key_prefix);

  // Hooks for the trainer (defaults: nothing to do).
  /// An extra loss term (e.g. an L1 penalty); an undefined tensor when there is none.
  virtual torch::Tensor penalty() { return {}; }
  /// Called after every optimizer step; `step` counts completed steps (1 after the first),
  /// `lr` is the learning rate that step used (for proximal updates).
  virtual void after_optimizer_step(int64_t step, double lr) {}
  /// Non-zero counts of the adapter's tensors, named by suffix as in peft_tensors().
  virtual std::vector<TensorSparsity> sparsity_stats() const;

  const std::shared_ptr<model::LinearBase>& base() const { return base_; }

 protected:
  /// Called by load_peft_tensors after the shape checks, tensors already in the adapter's dtype.
  virtual void assign_peft_tensors(const std::map<std::string, torch::Tensor>& by_suffix) = 0;
  /// The base's dense weight parameter, for merge / unmerge; throws std::logic_error otherwise.
  torch::Tensor& dense_base_weight();
  /// The frozen weight as the forward pass needs it: the parameter itself for a dense base (so
  /// autograd still sees it), else the base's effective (dequantized) weight.
  torch::Tensor base_weight_for_forward();

  std::shared_ptr<model::LinearBase> base_;
  bool merged_ = false;
};

}  // namespace peft::adapters
