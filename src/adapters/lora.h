#pragma once
// LoRA (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models"), as HF PEFT's
// tuners/lora Linear: h = W0·x + b + (α/r)·B·A·dropout(x), A [r, in] Kaiming-uniform (a=√5, the
// nn.Linear default), B [out, r] zeros, so the adapter starts as the identity update.
// rsLoRA (Kalajdzievski, 2023) scales by α/√r instead. Bias "none": only A and B train.
#include <memory>

#include "adapters/adapter.h"

namespace peft::adapters {

struct LoraOptions {
  int64_t rank = 8;
  double alpha = 8.0;
  double dropout = 0.0;
  bool use_rslora = false;
  /// Throws peft::InputError naming the option.
  void validate() const;
  double scaling() const;  // α/r, or α/√r with rsLoRA
};

class LoraLinear : public AdapterLinear {
 public:
  LoraLinear(std::shared_ptr<model::LinearBase> base, const LoraOptions& options);

  /// base(x) + scale·((dropout(x)·Aᵀ)·Bᵀ): two thin products, B·A is never formed.
  torch::Tensor forward(const torch::Tensor& x) override;

  std::string kind() const override { return "lora"; }
  int64_t rank() const override { return options_.rank; }
  const LoraOptions& options() const { return options_; }
  double scaling() const { return scale_; }
  torch::Tensor& lora_A() { return lora_A_->weight; }  // [r, in]
  torch::Tensor& lora_B() { return lora_B_->weight; }  // [out, r]

  torch::Tensor delta_weight() const override;  // scale·B·A
  void merge() override;                        // W0 += scale·B·A
  void unmerge() override;                      // W0 -= scale·B·A
  std::vector<torch::Tensor> adapter_parameters() const override { return {lora_A_->weight, lora_B_->weight}; }
  NamedTensors peft_tensors() const override;
  std::vector<std::pair<std::string, std::vector<int64_t>>> peft_shapes() const override;

 protected:
  void assign_peft_tensors(const std::map<std::string, torch::Tensor>& by_suffix) override;
  /// base(x) + scale·((dropout(x)·Aᵀ)·Bᵀ) with the given factors (the full ones, or Sparse LoRA's live channels).
  torch::Tensor forward_with(const torch::Tensor& x, const torch::Tensor& A, const torch::Tensor& B);

  LoraOptions options_;
  double scale_;
  std::shared_ptr<WeightHolder> lora_A_, lora_B_;
};

}  // namespace peft::adapters
