#include "adapters/inject.h"

#include <algorithm>
#include <set>

#include <fmt/ranges.h>

#include "core/error.h"

namespace peft::adapters {

bool TargetSpec::matches(const model::LinearSlot& slot) const { return matches(slot.path, slot.layer); }

std::vector<model::LinearSlot> select_slots(model::DistilBert& model, const TargetSpec& spec) {
  spec.validate();
  const int64_t n_layers = model.config().n_layers;
  for (int64_t l : spec.layers)
    if (l >= n_layers) throw_input("layers_to_transform: layer {} does not exist, the model has {} layers", l, n_layers);
  std::vector<model::LinearSlot> out;
  for (auto& slot : model.linear_slots())
    if (spec.matches(slot)) out.push_back(slot);
  if (out.empty())
    throw_input("target modules {} match no linear layer of the {} model (encoder linears are {} in {} layers, paths like {})",
                spec.describe(), model::family_name(model.family()), fmt::join(encoder_linear_names(model.family()), ", "), n_layers,
                model.linear_slots().front().path);
  return out;
}

std::vector<AdapterRef> inject(model::DistilBert& model, const TargetSpec& spec, const AdapterFactory& factory) {
  auto slots = select_slots(model, spec);
  std::vector<AdapterRef> made;
  for (auto& slot : slots) {
    auto current = slot.get();
    if (std::dynamic_pointer_cast<AdapterLinear>(current))
      throw std::logic_error(fmt::format("{} already holds an adapter", slot.path));
    made.push_back({slot.path, slot.layer, slot.name, factory(current, slot)});
    PEFT_CHECK(made.back().adapter, "adapter factory returned null for {}", slot.path);
  }
  install(model, made);
  return made;
}

void install(model::DistilBert& model, const std::vector<AdapterRef>& adapters) {
  auto slots = model.linear_slots();
  for (const auto& ref : adapters) {
    auto it = std::find_if(slots.begin(), slots.end(), [&](const model::LinearSlot& s) { return s.path == ref.path; });
    PEFT_CHECK(it != slots.end(), "no linear slot {}", ref.path);
    PEFT_CHECK(ref.adapter->base() == it->get(), "adapter for {} wraps a different layer than the one in the slot", ref.path);
    // A module made after model.eval() is still in training mode (dropout on): follow the model.
    ref.adapter->train(model.is_training());
    it->set(ref.adapter);
  }
}

void remove_adapters(model::DistilBert& model) {
  for (auto& slot : model.linear_slots())
    if (auto a = std::dynamic_pointer_cast<AdapterLinear>(slot.get())) {
      if (a->merged()) a->unmerge();
      slot.set(a->base());
    }
}

std::vector<AdapterRef> find_adapters(model::DistilBert& model) {
  std::vector<AdapterRef> out;
  for (auto& slot : model.linear_slots())
    if (auto a = std::dynamic_pointer_cast<AdapterLinear>(slot.get())) out.push_back({slot.path, slot.layer, slot.name, a});
  return out;
}

}  // namespace peft::adapters
