#include "adapters/lora.h"

#include <cmath>

#include <torch/nn/functional/linear.h>
#include <torch/nn/init.h>

#include "core/error.h"
#include "model/autocast.h"
#include "model/dropout.h"

namespace peft::adapters {
namespace F = torch::nn::functional;

void LoraOptions::validate() const {
  if (rank < 1) throw_input("lora rank must be >= 1, got {}", rank);
  if (!std::isfinite(alpha) || alpha <= 0) throw_input("lora alpha must be > 0, got {}", alpha);
  if (!(dropout >= 0.0 && dropout < 1.0)) throw_input("lora dropout must be in [0, 1), got {}", dropout);
}

double LoraOptions::scaling() const {
  return use_rslora ? alpha / std::sqrt(static_cast<double>(rank)) : alpha / static_cast<double>(rank);
}

LoraLinear::LoraLinear(std::shared_ptr<model::LinearBase> base, const LoraOptions& options)
    : AdapterLinear(std::move(base)), options_(options), scale_(options.scaling()) {
  options_.validate();
  const auto opts = base_->effective_weight().options().requires_grad(false);
  lora_A_ = register_module("lora_A", std::make_shared<WeightHolder>(torch::empty({options_.rank, in_features()}, opts)));
  lora_B_ = register_module("lora_B", std::make_shared<WeightHolder>(torch::zeros({out_features(), options_.rank}, opts)));
  torch::NoGradGuard g;
  torch::nn::init::kaiming_uniform_(lora_A_->weight, std::sqrt(5.0));
}

torch::Tensor LoraLinear::forward(const torch::Tensor& x) {
  if (merged_) return base_->forward(x);
  return forward_with(x, lora_A_->weight, lora_B_->weight);
}

torch::Tensor LoraLinear::forward_with(const torch::Tensor& x, const torch::Tensor& A, const torch::Tensor& B) {
  auto result = base_->forward(x);
  auto h = model::dropout(x, options_.dropout, is_training());
  // Scaling the r-wide intermediate is cheaper than scaling the output.
  h = F::linear(h, A) * scale_;
  return result + F::linear(h, B);
}

torch::Tensor LoraLinear::delta_weight() const {
  torch::NoGradGuard g;
  model::AutocastOffGuard fp32;  // merged in the weights' dtype, not B·A rounded to bf16 first
  return torch::matmul(lora_B_->weight, lora_A_->weight) * scale_;
}

void LoraLinear::merge() {
  PEFT_CHECK(!merged_, "lora adapter already merged");
  auto& w = dense_base_weight();
  torch::NoGradGuard g;
  w.add_(delta_weight());
  merged_ = true;
}

void LoraLinear::unmerge() {
  PEFT_CHECK(merged_, "lora adapter is not merged");
  auto& w = dense_base_weight();
  torch::NoGradGuard g;
  w.sub_(delta_weight());
  merged_ = false;
}

NamedTensors LoraLinear::peft_tensors() const {
  return {{"lora_A.weight", lora_A_->weight.detach()}, {"lora_B.weight", lora_B_->weight.detach()}};
}

std::vector<std::pair<std::string, std::vector<int64_t>>> LoraLinear::peft_shapes() const {
  return {{"lora_A.weight", {options_.rank, in_features()}}, {"lora_B.weight", {out_features(), options_.rank}}};
}

void LoraLinear::assign_peft_tensors(const std::map<std::string, torch::Tensor>& by_suffix) {
  torch::NoGradGuard g;
  lora_A_->weight.copy_(by_suffix.at("lora_A.weight"));
  lora_B_->weight.copy_(by_suffix.at("lora_B.weight"));
}

}  // namespace peft::adapters
