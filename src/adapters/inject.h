#pragma once
// Choosing the linear layers an adapter goes into, and putting it there.
//
// Targets follow HF PEFT's target_modules: a list of names matches a module whose path equals a
// name or ends with "." + name (so "q_lin" and "attention.q_lin" both work); a single string is
// a regular expression that must match the whole path (Python's re.fullmatch; here ECMAScript
// std::regex_match, which agrees for ordinary patterns); "all-linear" is the six encoder linears
// of every block (q_lin, k_lin, v_lin, out_lin, lin1, lin2) and never a head — PEFT would also
// take pre_classifier, which for classification is trained in full instead (modules_to_save).
// A BERT-family model's linears are query, key, value, attention.output.dense,
// intermediate.dense and output.dense ("dense" names the last three, as in PEFT; the pooler's
// dense is a head layer here and is never a target).
// layers_to_transform keeps only the listed block indices (names only, as in PEFT).
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "adapters/adapter.h"
#include "model/distilbert.h"

namespace peft::adapters {

struct TargetSpec {
  enum class Kind { Names, Regex, AllLinear };
  Kind kind = Kind::Names;
  std::vector<std::string> names;  // Kind::Names
  std::string regex;               // Kind::Regex
  std::vector<int64_t> layers;     // empty = every layer

  static TargetSpec from_names(std::vector<std::string> names, std::vector<int64_t> layers = {});
  static TargetSpec from_regex(std::string regex);
  static TargetSpec all_linear(std::vector<int64_t> layers = {});
  /// A list as in a config file: ["all-linear"] alone means all-linear, else names.
  static TargetSpec from_list(const std::vector<std::string>& items, std::vector<int64_t> layers = {});

  /// "q_lin, v_lin (layers 0, 1)", "regex …", "all-linear" — for messages.
  std::string describe() const;
  /// Throws peft::InputError for empty names, a bad regex, negative layers, or layers with a regex.
  void validate() const;
  bool matches(const model::LinearSlot& slot) const;
};

/// The six encoder linear names, in block order (DistilBERT's, or the given family's).
const std::vector<std::string>& encoder_linear_names();
const std::vector<std::string>& encoder_linear_names(model::Family family);

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
