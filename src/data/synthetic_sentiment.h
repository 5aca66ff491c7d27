#pragma once
// A sentiment task in SST-2 style, generated from a seed, that a model can only solve by
// reading word order (data/synthetic_grammar.h): negation flips a clause ("not bad" is
// positive) and about half the sentences hold two clauses of opposite polarity joined by
// "but" / "yet" / "although" / "though", where the label follows the main clause. A
// bag-of-words model is at chance on those (tests/data/test_synthetic.cpp fits one).
// The vocabulary is synthetic_vocab() (data/synthetic_lexicon.h).
#include <cstdint>

#include "data/text_split.h"

namespace peft::data {

struct SyntheticSentimentOptions {
  int64_t num_examples = 10000;
  uint64_t seed = 0;
  double contrast_fraction = 0.5;  // share of two-clause contrast sentences
  double negation_prob = 0.3;      // per clause
  int max_words = 18;              // >= 17
};

/// Labels are exactly balanced (⌈N/2⌉ negative, ⌊N/2⌋ positive) in a shuffled order;
/// `contrast` flags the contrast sentences. Same options → same split, on every platform.
TextSplit synthetic_sentiment(const SyntheticSentimentOptions& opts);

}  // namespace peft::data
