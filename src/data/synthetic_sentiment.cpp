#include "data/synthetic_sentiment.h"

#include <numeric>
#include <vector>

#include "core/error.h"
#include "data/rng.h"
#include "data/synthetic_grammar.h"

namespace peft::data {

TextSplit synthetic_sentiment(const SyntheticSentimentOptions& opts) {
  if (opts.num_examples <= 0) throw_input("synthetic sentiment: num_examples must be positive, got {}", opts.num_examples);
  if (opts.contrast_fraction < 0 || opts.contrast_fraction > 1)
    throw_input("synthetic sentiment: contrast_fraction must be in [0, 1], got {}", opts.contrast_fraction);
  if (opts.negation_prob < 0 || opts.negation_prob > 1)
    throw_input("synthetic sentiment: negation_prob must be in [0, 1], got {}", opts.negation_prob);
  if (opts.max_words < 17) throw_input("synthetic sentiment: max_words must be at least 17, got {}", opts.max_words);

  const auto n = static_cast<std::size_t>(opts.num_examples);
  // The order of labels is shuffled by its own stream, so it does not shift the sentences.
  std::vector<uint8_t> labels(n);
  for (std::size_t i = 0; i < n; ++i) labels[i] = static_cast<uint8_t>(i & 1);
  Rng order_rng(derive_seed(opts.seed, 1));
  order_rng.shuffle(labels);

  Rng rng(derive_seed(opts.seed, 2));
  const GrammarOptions g{opts.negation_prob, opts.max_words};
  TextSplit out;
  out.source = "synthetic_sentiment(seed=" + std::to_string(opts.seed) + ")";
  out.reserve(n);
  out.contrast.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const bool contrast = rng.chance(opts.contrast_fraction);
    const SyntheticSentence s = synthetic_sentence(rng, labels[i], contrast, g);
    out.texts.push_back(join_words(s.words));
    out.labels.push_back(s.label);
    out.contrast.push_back(s.contrast ? 1 : 0);
  }
  return out;
}

}  // namespace peft::data
