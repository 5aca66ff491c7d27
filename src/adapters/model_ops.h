#pragma once
// Operations over every adapter of a model, for the trainer and the measurements.
#include <cstdint>
#include <vector>

#include "adapters/adapter.h"
#include "model/distilbert.h"

namespace peft::adapters {

void merge_all(model::DistilBert& model);    // adapters not yet merged
void unmerge_all(model::DistilBert& model);  // adapters merged

/// Sum of the adapters' penalty() terms; an undefined tensor when none has one.
torch::Tensor total_penalty(model::DistilBert& model);
/// Calls after_optimizer_step on every adapter.
void after_optimizer_step(model::DistilBert& model, int64_t step, double lr);

struct SparsityReport {
  std::vector<TensorSparsity> tensors;  // full names, e.g. "distilbert….q_lin.lora_A.weight"
  int64_t nonzero = 0;
  int64_t total = 0;
  double sparsity() const { return total ? 1.0 - static_cast<double>(nonzero) / static_cast<double>(total) : 0.0; }
};
/// Non-zero counts of every adapter tensor (as saved), per tensor and in total.
SparsityReport sparsity_report(model::DistilBert& model);

}  // namespace peft::adapters
