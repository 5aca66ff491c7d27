#pragma once
// Which linear layers an adapter goes into (HF PEFT's target_modules), without LibTorch: the
// JSON of adapter_config.json and the fuzz harness use it as well as inject.h.
//
// A list of names matches a module whose path equals a name or ends with "." + name (so
// "q_lin" and "attention.q_lin" both work); a single string is a regular expression that must
// match the whole path (Python's re.fullmatch); "all-linear" is the six encoder linears of
// every block (q_lin, k_lin, v_lin, out_lin, lin1, lin2) and never a head — PEFT would also
// take pre_classifier, which for classification is trained in full instead (modules_to_save).
// A BERT-family model's linears are query, key, value, attention.output.dense,
// intermediate.dense and output.dense ("dense" names the last three, as in PEFT; the pooler's
// dense is a head layer here and is never a target).
// layers_to_transform keeps only the listed block indices (names only, as in PEFT).
//
// The regular expression is matched by a small automaton of its own (no backtracking, no
// recursion that grows with the text, O(path length × pattern size)), not std::regex, whose
// ECMAScript matcher backtracks and can take exponential time on a pattern such as (.*)*x. It
// reads Python's ordinary syntax: literals and escapes, ., [classes], \d \w \s (and \D \W \S),
// groups (…) and (?:…), |, the quantifiers * + ? {n} {n,} {n,m} {,m} (lazy forms too), ^ and $.
// Anything else (back-references, look-arounds, inline flags, \b …) is refused by name, and so
// is a pattern longer than 1024 characters, nested deeper than 64 groups, or expanding to more
// than 20000 steps.
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"  // model::Family (torch-free)

namespace peft::model {
struct LinearSlot;
}

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
  /// Whether the encoder linear at `path` in block `layer` is a target (all-linear: every one;
  /// the caller passes only encoder linears). A regex that does not validate matches nothing.
  bool matches(const std::string& path, int64_t layer) const;
  bool matches(const model::LinearSlot& slot) const;  // inject.cpp
};

/// The six encoder linear names, in block order (DistilBERT's, or the given family's).
const std::vector<std::string>& encoder_linear_names();
const std::vector<std::string>& encoder_linear_names(model::Family family);

/// Whether `pattern` matches all of `text` (the syntax above). Throws peft::InputError for a
/// pattern it does not read, saying why and where.
bool regex_full_match(const std::string& pattern, const std::string& text);

}  // namespace peft::adapters
