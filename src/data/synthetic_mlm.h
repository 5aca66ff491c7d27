#pragma once
// A language corpus for masked-language-model pre-training over the synthetic task's
// words (data/synthetic_grammar.h): each line is 1–4 sentences of the grammar with random
// polarities, so contrast connectives, negation and agreement between clauses are there to
// be learnt. Cut into blocks with make_mlm_blocks (data/mlm_data.h) like WikiText.
#include <cstdint>
#include <string>
#include <vector>

namespace peft::data {

struct SyntheticMlmOptions {
  int64_t num_lines = 5000;
  uint64_t seed = 0;
  int max_sentences_per_line = 4;
};

/// Lines of text (words separated by spaces). Same options → same corpus.
std::vector<std::string> synthetic_mlm_corpus(const SyntheticMlmOptions& opts);

}  // namespace peft::data
