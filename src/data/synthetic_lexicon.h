#pragma once
// The words of the synthetic tasks (data/synthetic_sentiment.h, data/synthetic_mlm.h) and
// the vocabulary built from them. Every word is a lower-case ASCII whole word or a single
// punctuation mark, so a WordPieceTokenizer over synthetic_vocab() maps each word to
// exactly one id and never to [UNK].
#include <string>
#include <string_view>
#include <vector>

namespace peft::data {

struct SyntheticLexicon {
  std::vector<std::string_view> determiners;    // the, this, …  (before a noun)
  std::vector<std::string_view> nouns;          // film, plot, …
  std::vector<std::string_view> intensifiers;   // very, really, …
  std::vector<std::string_view> positive;       // adjectives: good, great, …
  std::vector<std::string_view> negative;       // adjectives: bad, awful, …
  std::vector<std::string_view> positive_verbs; // base forms: like, love, …
  std::vector<std::string_view> negative_verbs; // hate, dislike
  std::vector<std::string_view> other;          // copulas, pronouns, negators, connectives, fillers, punctuation
};

/// The fixed word lists (one static instance).
const SyntheticLexicon& synthetic_lexicon();

/// [PAD] [UNK] [CLS] [SEP] [MASK] (ids 0–4, BERT's names) followed by every word of the
/// lexicon once, in a fixed order. Suitable for text::WordPieceTokenizer(vocab).
std::vector<std::string> synthetic_vocab();

}  // namespace peft::data
