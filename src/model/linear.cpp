#include "model/linear.h"

#include <cmath>

#include <torch/nn/functional/linear.h>
#include <torch/nn/init.h>

namespace peft::model {

DenseLinear::DenseLinear(int64_t in, int64_t out, bool with_bias) {
  weight_ = register_parameter("weight", torch::empty({out, in}));
  if (with_bias) bias_ = register_parameter("bias", torch::zeros({out}));
  init_torch_default();
}

torch::Tensor DenseLinear::forward(const torch::Tensor& x) {
  return torch::nn::functional::linear(x, weight_, bias_);
}

void DenseLinear::init_normal(double std) {
  torch::NoGradGuard g;
  weight_.normal_(0.0, std);
  if (bias_.defined()) bias_.zero_();
}

void DenseLinear::init_torch_default() {
  torch::NoGradGuard g;
  torch::nn::init::kaiming_uniform_(weight_, std::sqrt(5.0));
  if (bias_.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(weight_.size(1)));
    bias_.uniform_(-bound, bound);
  }
}

}  // namespace peft::model
