// A rough cost model for largest-first scheduling: only the order of trials matters, so
// the figures are proxies (training tokens processed × a per-method factor).
#include <algorithm>

#include "config/sweep_spec.h"

namespace peft {
namespace {

/// Training examples of a full epoch and the tokens one example costs.
void dataset_size(const DatasetSettings& d, double& examples, double& tokens) {
  const double max_length = static_cast<double>(d.max_length);
  if (d.name == "sst2") {
    examples = 67349;                       // GLUE SST-2 train
    tokens = std::min(max_length, 24.0);    // short phrases, padded to the batch's longest
  } else if (d.name == "imdb") {
    examples = 25000;                       // aclImdb train
    tokens = std::min(max_length, 512.0);   // reviews are ~300 word pieces: mostly truncated
  } else if (d.name == "wikitext2") {
    tokens = static_cast<double>(d.block_size);
    examples = 2.4e6 / tokens;              // ~2.4M word pieces in wiki.train.tokens
  } else if (d.name == "synthetic_mlm") {   // synthetic_train counts blocks
    examples = static_cast<double>(d.synthetic_train);
    tokens = static_cast<double>(d.block_size);
  } else {                                  // synthetic sentences: at most ~18 tokens
    examples = static_cast<double>(d.synthetic_train);
    tokens = std::min(max_length, 18.0);
  }
  if (d.max_train > 0) examples = std::min(examples, static_cast<double>(d.max_train));
}

double method_factor(const std::string& m) {
  if (m == "full") return 3.0;     // gradients and optimizer state for every weight
  if (m == "qlora") return 2.0;    // dequantizes the base weights in every forward and backward
  if (m == "sparse_lora" || m == "hira") return 1.2;  // masks / Hadamard product on top of LoRA
  if (m == "head") return 0.6;     // backward stops at the head
  return 1.0;
}

}  // namespace

double expected_cost(const TrialSpec& t) {
  double examples = 0, tokens = 0;
  dataset_size(t.dataset, examples, tokens);
  const double seen = t.train.max_steps > 0
                          ? static_cast<double>(t.train.max_steps * t.train.batch_size)
                          : examples * static_cast<double>(t.train.epochs);
  return seen * tokens * method_factor(t.method.method);
}

}  // namespace peft
