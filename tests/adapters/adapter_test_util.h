#pragma once
// Shared set-up of the adapter tests: a frozen dense base layer with seeded random weights.
#include <memory>

#include <torch/torch.h>

#include "model/linear.h"

namespace peft::testing {

/// A DenseLinear(in → out) initialised from `seed`, every parameter frozen (the adapter's base).
inline std::shared_ptr<model::DenseLinear> frozen_dense(int64_t in, int64_t out, uint64_t seed) {
  torch::manual_seed(seed);
  auto d = std::make_shared<model::DenseLinear>(in, out);
  for (auto& p : d->parameters()) p.set_requires_grad(false);
  return d;
}

}  // namespace peft::testing
