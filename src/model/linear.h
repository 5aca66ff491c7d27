#pragma once
// The linear layers of the encoder sit behind one interface so that adapters (LoRA, HiRA, …)
// and quantized weights (NF4) can replace them in place, under the same module path.
#include <torch/nn/module.h>
#include <torch/types.h>

namespace peft::model {

class LinearBase : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  virtual int64_t in_features() const = 0;
  virtual int64_t out_features() const = 0;
  /// The effective dense weight [out, in] (dequantized / merged view), no grad.
  virtual torch::Tensor effective_weight() const = 0;
  /// Bias [out] or an undefined tensor.
  virtual torch::Tensor bias() const = 0;
};

/// A plain dense layer with transformers' parameter names: `weight` [out, in], `bias` [out].
class DenseLinear : public LinearBase {
 public:
  DenseLinear(int64_t in, int64_t out, bool with_bias = true);
  torch::Tensor forward(const torch::Tensor& x) override;
  int64_t in_features() const override { return weight_.size(1); }
  int64_t out_features() const override { return weight_.size(0); }
  torch::Tensor effective_weight() const override { return weight_.detach(); }
  torch::Tensor bias() const override { return bias_; }
  torch::Tensor& weight_param() { return weight_; }
  torch::Tensor& bias_param() { return bias_; }
  /// transformers' _init_weights: N(0, std) weight, zero bias.
  void init_normal(double std);
  /// PyTorch's nn.Linear default: U(±1/√in) for weight and bias (Kaiming-uniform a=√5).
  void init_torch_default();

 private:
  torch::Tensor weight_, bias_;
};

}  // namespace peft::model
