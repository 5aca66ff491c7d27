#include "adapters/hira.h"

#include <cmath>

#include <torch/nn/functional/linear.h>
#include <torch/nn/init.h>

#include "core/error.h"
#include "model/autocast.h"
#include "model/dropout.h"

namespace peft::adapters {
namespace F = torch::nn::functional;

void HiraOptions::validate() const {
  if (rank < 1) throw_input("hira rank must be >= 1, got {}", rank);
  if (!std::isfinite(scale) || scale <= 0) throw_input("hira scale must be > 0, got {}", scale);
  if (!(dropout >= 0.0 && dropout < 1.0)) throw_input("hira dropout must be in [0, 1), got {}", dropout);
}

HiraLinear::HiraLinear(std::shared_ptr<model::LinearBase> base, const HiraOptions& options)
    : AdapterLinear(std::move(base)), options_(options) {
  options_.validate();
  const auto opts = base_->effective_weight().options().requires_grad(false);
  A_ = register_parameter("hira_A", torch::empty({options_.rank, in_features()}, opts));
  B_ = register_parameter("hira_B", torch::zeros({out_features(), options_.rank}, opts));
  torch::NoGradGuard g;
  torch::nn::init::kaiming_uniform_(A_, std::sqrt(5.0));
}

torch::Tensor HiraLinear::forward(const torch::Tensor& x) {
  auto result = base_->forward(x);
  if (merged_) return result;
  auto h = model::dropout(x, options_.dropout, is_training());
  auto update = base_weight_for_forward() * torch::matmul(B_, A_);
  if (options_.scale != 1.0) update = update * options_.scale;
  return result + F::linear(h, update);
}

torch::Tensor HiraLinear::delta_weight() const {
  torch::NoGradGuard g;
  model::AutocastOffGuard fp32;  // merged in the weights' dtype, not B·A rounded to bf16 first
  auto d = base_->effective_weight() * torch::matmul(B_, A_);
  return options_.scale != 1.0 ? d * options_.scale : d;
}

void HiraLinear::merge() {
  PEFT_CHECK(!merged_, "hira adapter already merged");
  auto& w = dense_base_weight();
  torch::NoGradGuard g;
  w.add_(delta_weight());
  merged_ = true;
}

void HiraLinear::unmerge() {
  PEFT_CHECK(merged_, "hira adapter is not merged");
  auto& w = dense_base_weight();
  torch::NoGradGuard g;
  model::AutocastOffGuard fp32;  // under bf16 autocast the factor would be rounded to 2^-8
  auto factor = torch::matmul(B_, A_) * options_.scale + 1.0;
  if (factor.abs().min().item<double>() < 1e-6)
    throw_runtime("cannot unmerge a hira adapter: 1 + scale·B·A has an entry within 1e-6 of zero, W0 is lost");
  w.div_(factor);
  merged_ = false;
}

NamedTensors HiraLinear::peft_tensors() const {
  torch::NoGradGuard g;
  auto b = options_.scale != 1.0 ? B_.detach() * options_.scale : B_.detach();
  return {{"hira_A", A_.detach()}, {"hira_B", b}};
}

std::vector<std::pair<std::string, std::vector<int64_t>>> HiraLinear::peft_shapes() const {
  return {{"hira_A", {options_.rank, in_features()}}, {"hira_B", {out_features(), options_.rank}}};
}

void HiraLinear::assign_peft_tensors(const std::map<std::string, torch::Tensor>& by_suffix) {
  torch::NoGradGuard g;
  A_.copy_(by_suffix.at("hira_A"));
  B_.copy_(by_suffix.at("hira_B"));
  options_.scale = 1.0;  // the file's hira_B already carries any scale (see hira.h)
}

}  // namespace peft::adapters
