#include "adapters/inject.h"

#include <algorithm>
#include <regex>
#include <set>

#include <fmt/ranges.h>

#include "core/error.h"

namespace peft::adapters {

TargetSpec TargetSpec::from_names(std::vector<std::string> names, std::vector<int64_t> layers) {
  TargetSpec s;
  s.kind = Kind::Names;
  s.names = std::move(names);
  s.layers = std::move(layers);
  return s;
}

TargetSpec TargetSpec::from_regex(std::string regex) {
  TargetSpec s;
  s.kind = Kind::Regex;
  s.regex = std::move(regex);
  return s;
}

TargetSpec TargetSpec::all_linear(std::vector<int64_t> layers) {
  TargetSpec s;
  s.kind = Kind::AllLinear;
  s.layers = std::move(layers);
  return s;
}

TargetSpec TargetSpec::from_list(const std::vector<std::string>& items, std::vector<int64_t> layers) {
  if (items.size() == 1 && items[0] == "all-linear") return all_linear(std::move(layers));
  return from_names(items, std::move(layers));
}

std::string TargetSpec::describe() const {
  std::string s;
  switch (kind) {
    case Kind::Names: s = fmt::format("{}", fmt::join(names, ", ")); break;
    case Kind::Regex: s = fmt::format("regex \"{}\"", regex); break;
    case Kind::AllLinear: s = "all-linear"; break;
  }
  if (!layers.empty()) s += fmt::format(" (layers {})", fmt::join(layers, ", "));
  return s;
}

void TargetSpec::validate() const {
  switch (kind) {
    case Kind::Names:
      if (names.empty()) throw_input("target modules: the list is empty");
      for (const auto& n : names)
        if (n.empty()) throw_input("target modules: empty name in [{}]", fmt::join(names, ", "));
      break;
    case Kind::Regex:
      if (!layers.empty()) throw_input("target modules: layers_to_transform cannot be used with a regex (as in PEFT)");
      try {
        std::regex re(regex);
      } catch (const std::regex_error& e) {
        throw_input("target modules: invalid regex \"{}\": {}", regex, e.what());
      }
      break;
    case Kind::AllLinear: break;
  }
  for (int64_t l : layers)
    if (l < 0) throw_input("layers_to_transform: negative layer index {}", l);
}

const std::vector<std::string>& encoder_linear_names() { return encoder_linear_names(model::Family::DistilBert); }

const std::vector<std::string>& encoder_linear_names(model::Family family) {
  static const std::vector<std::string> distilbert = {"q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"};
  static const std::vector<std::string> bert = {"query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"};
  return family == model::Family::Bert ? bert : distilbert;
}

bool TargetSpec::matches(const model::LinearSlot& slot) const {
  if (!layers.empty() && std::find(layers.begin(), layers.end(), slot.layer) == layers.end()) return false;
  switch (kind) {
    case Kind::Names:
      return std::any_of(names.begin(), names.end(), [&](const std::string& n) {
        return slot.path == n || (slot.path.size() > n.size() && slot.path.ends_with("." + n));
      });
    case Kind::Regex: return std::regex_match(slot.path, std::regex(regex));
    case Kind::AllLinear: return true;  // linear_slots() holds exactly the six encoder linears
  }
  return false;
}

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
