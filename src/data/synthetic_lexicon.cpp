#include "data/synthetic_lexicon.h"

#include <unordered_set>



namespace peft::data {

const SyntheticLexicon& synthetic_lexicon() {
  static const SyntheticLexicon lex = [] {
    SyntheticLexicon l;
    l.determiners = {"the", "this", "that", "its", "their", "every"};
    l.nouns = {"film",      "movie",    "story",  "plot",     "acting",      "cast",
               "script",    "ending",   "music",  "scene",    "director",    "dialogue",
               "soundtrack", "camera",  "pacing", "character", "performance", "show",
               "premise",   "humor"};
    l.intensifiers = {"very",  "really", "quite",      "truly",   "so",
                      "extremely", "rather", "incredibly", "totally", "genuinely"};
    l.positive = {"good",  "great",  "excellent", "wonderful", "brilliant",  "fun",
                  "charming", "moving", "clever", "beautiful", "superb",   "delightful",
                  "funny", "enjoyable", "fresh", "solid",      "gripping", "touching"};
    l.negative = {"bad",   "awful",  "terrible", "boring", "dull",   "weak",
                  "poor",  "horrible", "bland",  "tedious", "messy", "stupid",
                  "lame",  "clumsy", "flat",     "silly",  "painful", "forgettable"};
    l.positive_verbs = {"like", "love", "enjoy", "admire"};
    l.negative_verbs = {"hate", "dislike"};
    l.other = {
        // copulas, their negated forms and the verb forms of the "i liked …" clause
        "is", "was", "seems", "seemed", "seem", "feels", "felt", "feel", "looks", "looked",
        "look", "does", "did", "liked", "loved", "enjoyed", "admired", "hated", "disliked",
        // negators, pronouns, articles
        "not", "never", "it", "i", "we", "a", "an",
        // connectives and fillers
        "but", "yet", "although", "though", "and", "honestly", "overall", "frankly", "in",
        "end", "think", "thought",
        // punctuation (WordPiece splits it off as its own token)
        ",", ".", "!"};
    return l;
  }();
  return lex;
}

std::vector<std::string> synthetic_vocab() {
  const SyntheticLexicon& l = synthetic_lexicon();
  std::vector<std::string> vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  std::unordered_set<std::string_view> seen;
  auto add = [&](const std::vector<std::string_view>& words) {
    for (std::string_view w : words)
      if (seen.insert(w).second) vocab.emplace_back(w);
  };
  add(l.determiners);
  add(l.nouns);
  add(l.intensifiers);
  add(l.positive);
  add(l.negative);
  add(l.positive_verbs);
  add(l.negative_verbs);
  add(l.other);
  return vocab;
}

}  // namespace peft::data
