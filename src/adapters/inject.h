#pragma once
// Putting adapters into the linear layers a TargetSpec selects (target_spec.h: the selection
// rules, PEFT's target_modules, without LibTorch).
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "adapters/adapter.h"
#include "adapters/target_spec.h"
#include "model/distilbert.h"

namespace peft::adapters {

/// The slots `spec` selects, in model order. Throws peft::InputError when nothing matches
/// (naming the targets) or a layer index is out of range.
std::vector<model::LinearSlot> select_slots(model::DistilBert& model, const TargetSpec& spec);

/// Builds the adapter for one slot around the layer currently there.
using AdapterFactory = std::function<std::shared_ptr<AdapterLinear>(std::shared_ptr<model::LinearBase> base, const model::LinearSlot& slot)>;

struct AdapterRef {
  std::string path;  // module path, e.g. "distilbert.transformer.layer.0.attention.q_lin"
  int64_t layer = 0;
  std::string name;  // q_lin, …
  std::shared_ptr<AdapterLinear> adapter;
};

/// Wraps every selected layer with factory(layer). A slot that already holds an adapter is an
/// error (std::logic_error). Returns the new adapters in model order.
std::vector<AdapterRef> inject(model::DistilBert& model, const TargetSpec& spec, const AdapterFactory& factory);
/// Puts prepared adapters into their slots (by path), in the model's train/eval mode; used by
/// inject() and by the PEFT loader after all checks.
void install(model::DistilBert& model, const std::vector<AdapterRef>& adapters);
/// Replaces every adapter by its base layer (unmerging first if merged).
void remove_adapters(model::DistilBert& model);

/// The adapters currently in the model, in model order.
std::vector<AdapterRef> find_adapters(model::DistilBert& model);

}  // namespace peft::adapters
