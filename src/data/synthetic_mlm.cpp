#include "data/synthetic_mlm.h"

#include "core/error.h"
#include "data/rng.h"
#include "data/synthetic_grammar.h"

namespace peft::data {

std::vector<std::string> synthetic_mlm_corpus(const SyntheticMlmOptions& opts) {
  if (opts.num_lines <= 0) throw_input("synthetic MLM corpus: num_lines must be positive, got {}", opts.num_lines);
  if (opts.max_sentences_per_line <= 0)
    throw_input("synthetic MLM corpus: max_sentences_per_line must be positive, got {}",
                opts.max_sentences_per_line);
  Rng rng(derive_seed(opts.seed, 3));
  const GrammarOptions g;
  std::vector<std::string> lines;
  lines.reserve(static_cast<std::size_t>(opts.num_lines));
  std::vector<std::string_view> words;
  for (int64_t i = 0; i < opts.num_lines; ++i) {
    words.clear();
    const uint64_t k = 1 + rng.below(static_cast<uint64_t>(opts.max_sentences_per_line));
    for (uint64_t j = 0; j < k; ++j) {
      const int label = static_cast<int>(rng.below(2));
      const bool contrast = rng.chance(0.5);
      SyntheticSentence s = synthetic_sentence(rng, label, contrast, g);
      if (s.words.back() != "." && s.words.back() != "!") s.words.push_back(".");
      words.insert(words.end(), s.words.begin(), s.words.end());
    }
    lines.push_back(join_words(words));
  }
  return lines;
}

}  // namespace peft::data
