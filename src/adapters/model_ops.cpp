#include "adapters/model_ops.h"

#include "adapters/inject.h"

namespace peft::adapters {

void merge_all(model::DistilBert& model) {
  for (auto& ref : find_adapters(model))
    if (!ref.adapter->merged()) ref.adapter->merge();
}

void unmerge_all(model::DistilBert& model) {
  for (auto& ref : find_adapters(model))
    if (ref.adapter->merged()) ref.adapter->unmerge();
}

torch::Tensor total_penalty(model::DistilBert& model) {
  torch::Tensor sum;
  for (auto& ref : find_adapters(model)) {
    auto p = ref.adapter->penalty();
    if (p.defined()) sum = sum.defined() ? sum + p : p;
  }
  return sum;
}

void after_optimizer_step(model::DistilBert& model, int64_t step, double lr) {
  for (auto& ref : find_adapters(model)) ref.adapter->after_optimizer_step(step, lr);
}

SparsityReport sparsity_report(model::DistilBert& model) {
  SparsityReport r;
  for (auto& ref : find_adapters(model))
    for (auto s : ref.adapter->sparsity_stats()) {
      s.name = ref.path + "." + s.name;
      r.nonzero += s.nonzero;
      r.total += s.total;
      r.tensors.push_back(std::move(s));
    }
  return r;
}

}  // namespace peft::adapters
