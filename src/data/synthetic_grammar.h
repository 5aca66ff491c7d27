#pragma once
// The small sentiment grammar shared by the synthetic classification task and the
// synthetic MLM corpus. A clause carries a polarity; its surface adjective or verb has
// polarity XOR negation ("the plot was not bad" is positive). A sentence is one clause
// (optionally two joined by "and", same polarity) or two clauses of opposite polarity
// joined by a contrast connective, where the label follows the main clause:
//   A , but B | A but B | A , yet B          → label of B (second)
//   although A , B | though A , B            → label of B (second)
//   B , although A | B although A            → label of B (first)
// Swapping A and B keeps the multiset of words and flips the label, so a bag-of-words
// model is at chance on contrast sentences.
#include <string>
#include <string_view>
#include <vector>

#include "data/rng.h"

namespace peft::data {

struct SyntheticSentence {
  std::vector<std::string_view> words;
  int label = 0;          // 1 = positive
  bool contrast = false;  // two clauses of opposite polarity
  bool negated = false;   // some clause contains "not" / "never"
};

struct GrammarOptions {
  double negation_prob = 0.3;  // per clause
  int max_words = 18;          // words and punctuation marks, [CLS]/[SEP] not counted
};

/// One sentence with the given label; `contrast` picks the two-clause contrast form.
SyntheticSentence synthetic_sentence(Rng& rng, int label, bool contrast, const GrammarOptions& opts);

/// Words joined by single spaces ("the plot was not bad .").
std::string join_words(const std::vector<std::string_view>& words);

}  // namespace peft::data
