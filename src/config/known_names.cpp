#include "config/known_names.h"

namespace peft {

const std::vector<std::string>& known_methods() {
  static const std::vector<std::string> names = {"lora", "sparse_lora", "hira", "qlora", "full", "head"};
  return names;
}

const std::vector<std::string>& known_datasets() {
  static const std::vector<std::string> names = {"sst2", "imdb", "wikitext2", "synthetic_sentiment",
                                                 "synthetic_mlm"};
  return names;
}

bool method_has_rank(std::string_view m) {
  return m == "lora" || m == "sparse_lora" || m == "hira" || m == "qlora";
}

bool method_has_alpha(std::string_view m) { return m == "lora" || m == "sparse_lora" || m == "qlora"; }

bool dataset_is_synthetic(std::string_view d) { return d.starts_with("synthetic_"); }

bool dataset_is_mlm(std::string_view d) { return d == "wikitext2" || d == "synthetic_mlm"; }

std::string_view dataset_format(std::string_view d) {
  if (d == "sst2") return "glue-sst2";
  if (d == "imdb") return "aclimdb";
  if (d == "wikitext2") return "wikitext-2";
  return "synthetic";
}

const std::vector<std::string>& known_target_modules() {
  // DistilBERT's linears, then BERT's (the model checks which family the names fit at run time).
  static const std::vector<std::string> names = {"q_lin", "k_lin", "v_lin", "out_lin", "lin1",      "lin2",
                                                 "query", "key",   "value", "dense",   "all-linear"};
  return names;
}

}  // namespace peft
