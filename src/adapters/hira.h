#pragma once
// HiRA (Huang et al., ICLR 2025, "HiRA: Parameter-Efficient Hadamard High-Rank Adaptation for
// Large Language Models"): W = W0 + W0 ⊙ (B·A). The Hadamard product with the frozen weight
// gives an update whose rank can reach rank(W0)·r, far above r, for the parameter count of LoRA.
// A [r, in] Kaiming-uniform (a=√5), B [out, r] zeros; no α. Our optional `scale` multiplies the
// update (1 = the paper and HF PEFT): on a small random base W0's entries are ~0.02 and the
// update is too weak to learn without it (on the tiny synthetic task HiRA stays at 0.50
// accuracy at scale 1 for adapter rates 1e-3 to 3e-2, and reaches 0.96-0.99 at scale 50).
//
// Names follow HF PEFT's tuners/hira: the factors are bare parameters (ParameterDict entries
// there), so the live names are `…q_lin.hira_A` / `…q_lin.hira_B` and the saved keys have no
// `.weight` suffix. PEFT's HiRA has no scale, so peft_tensors() folds the scale into hira_B
// (B' = scale·B gives the same W0 ⊙ (B'·A)); an adapter loaded back has scale 1.
#include <memory>

#include "adapters/adapter.h"

namespace peft::adapters {

struct HiraOptions {
  int64_t rank = 8;
  double scale = 1.0;
  double dropout = 0.0;
  void validate() const;  // throws peft::InputError naming the option
};

class HiraLinear : public AdapterLinear {
 public:
  HiraLinear(std::shared_ptr<model::LinearBase> base, const HiraOptions& options);

  /// base(x) + dropout(x)·(scale·W0 ⊙ (B·A))ᵀ. The Hadamard product needs the full [out, in]
  /// matrix once per forward, as in PEFT.
  torch::Tensor forward(const torch::Tensor& x) override;

  std::string kind() const override { return "hira"; }
  int64_t rank() const override { return options_.rank; }
  const HiraOptions& options() const { return options_; }
  torch::Tensor& hira_A() { return A_; }  // [r, in]
  torch::Tensor& hira_B() { return B_; }  // [out, r]

  torch::Tensor delta_weight() const override;  // scale·W0 ⊙ (B·A)
  /// W0 ← W0 ⊙ (1 + scale·B·A); unmerge divides by the same factor (as PEFT does) and refuses
  /// when a factor is within 1e-6 of zero, where W0 cannot be recovered.
  void merge() override;
  void unmerge() override;
  std::vector<torch::Tensor> adapter_parameters() const override { return {A_, B_}; }
  NamedTensors peft_tensors() const override;
  std::vector<std::pair<std::string, std::vector<int64_t>>> peft_shapes() const override;

 protected:
  void assign_peft_tensors(const std::map<std::string, torch::Tensor>& by_suffix) override;

  HiraOptions options_;
  torch::Tensor A_, B_;
};

}  // namespace peft::adapters
