#include "adapters/adapter.h"

#include <fmt/ranges.h>

#include "core/error.h"

namespace peft::adapters {

AdapterLinear::AdapterLinear(std::shared_ptr<model::LinearBase> base) : base_(std::move(base)) {
  PEFT_CHECK(base_ != nullptr, "adapter needs a base layer");
  PEFT_CHECK(!std::dynamic_pointer_cast<AdapterLinear>(base_), "adapters do not stack: the base is already an adapter");
  register_module("base_layer", base_);
}

torch::Tensor AdapterLinear::effective_weight() const {
  auto w = base_->effective_weight();
  return merged_ ? w : w + delta_weight();
}

std::vector<TensorSparsity> AdapterLinear::sparsity_stats() const {
  std::vector<TensorSparsity> out;
  for (const auto& [name, t] : peft_tensors())
    out.push_back({name, t.count_nonzero().item<int64_t>(), t.numel()});
  return out;
}

void AdapterLinear::load_peft_tensors(const std::map<std::string, torch::Tensor>& by_suffix, const std::string& key_prefix) {
  std::map<std::string, torch::Tensor> converted;
  const auto options = adapter_parameters().front().options();
  for (const auto& [suffix, shape] : peft_shapes()) {
    auto it = by_suffix.find(suffix);
    if (it == by_suffix.end()) throw_input("tensor {}{} is missing", key_prefix, suffix);
    const auto& t = it->second;
    if (t.sizes().vec() != shape)
      throw_input("tensor {}{} has shape [{}], the model needs [{}] (rank {}, {} → {})", key_prefix, suffix,
                  fmt::join(t.sizes(), ", "), fmt::join(shape, ", "), rank(), in_features(), out_features());
    if (!t.is_floating_point()) throw_input("tensor {}{} is not floating point ({})", key_prefix, suffix, std::string(t.dtype().name()));
    converted[suffix] = t.to(options.device(), options.dtype().toScalarType());
  }
  for (const auto& [suffix, t] : by_suffix)
    if (!converted.count(suffix)) throw_input("tensor {}{} is not part of a {} adapter", key_prefix, suffix, kind());
  PEFT_CHECK(!merged_, "load into a merged adapter");
  assign_peft_tensors(converted);
}

torch::Tensor& AdapterLinear::dense_base_weight() {
  auto dense = std::dynamic_pointer_cast<model::DenseLinear>(base_);
  if (!dense)
    throw std::logic_error(fmt::format("merge/unmerge need a dense base layer; this {} adapter wraps a {}", kind(), base_->name()));
  return dense->weight_param();
}

torch::Tensor AdapterLinear::base_weight_for_forward() {
  if (auto dense = std::dynamic_pointer_cast<model::DenseLinear>(base_)) return dense->weight_param();
  return base_->effective_weight();
}

}  // namespace peft::adapters
