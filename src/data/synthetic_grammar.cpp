#include "data/synthetic_grammar.h"

#include <array>

#include "core/error.h"
#include "data/synthetic_lexicon.h"

namespace peft::data {

namespace {

using Words = std::vector<std::string_view>;

struct Copula {
  std::string_view form;   // "seems"
  std::string_view base;   // "seem"  (empty for is/was: negated as "is not")
  std::string_view aux;    // "does" / "did"
};
constexpr std::array<Copula, 8> kCopulas = {{{"is", "", ""},
                                             {"was", "", ""},
                                             {"seems", "seem", "does"},
                                             {"seemed", "seem", "did"},
                                             {"feels", "feel", "does"},
                                             {"felt", "feel", "did"},
                                             {"looks", "look", "does"},
                                             {"looked", "look", "did"}}};

// Past tense of the lexicon's verbs, same order as positive_verbs / negative_verbs.
constexpr std::array<std::string_view, 4> kPositivePast = {"liked", "loved", "enjoyed", "admired"};
constexpr std::array<std::string_view, 2> kNegativePast = {"hated", "disliked"};

constexpr std::array<std::array<std::string_view, 4>, 6> kPrefixes = {{{"honestly", ","},
                                                                       {"overall", ","},
                                                                       {"frankly", ","},
                                                                       {"in", "the", "end", ","},
                                                                       {"i", "think"},
                                                                       {"we", "thought"}}};

template <typename T, std::size_t N>
const T& pick(Rng& rng, const std::array<T, N>& a) {
  return a[rng.below(N)];
}

std::string_view adjective(Rng& rng, const SyntheticLexicon& lex, bool positive) {
  return rng.pick(positive ? lex.positive : lex.negative);
}

bool vowel(std::string_view w) {
  return !w.empty() && std::string_view("aeiou").find(w[0]) != std::string_view::npos;
}

/// Appends a clause meaning `polarity`; returns whether it is negated.
bool clause(Rng& rng, const SyntheticLexicon& lex, bool polarity, double negation_prob, Words& out) {
  const bool neg = rng.chance(negation_prob);
  const bool surface = polarity != neg;
  const uint64_t form = rng.below(4);
  if (form <= 1) {  // the plot was (not) (very) good
    out.push_back(rng.pick(lex.determiners));
    out.push_back(rng.pick(lex.nouns));
    const Copula& c = pick(rng, kCopulas);
    if (neg) {
      const bool never = rng.chance(0.3);
      if (c.base.empty()) out.insert(out.end(), {c.form, never ? "never" : "not"});
      else if (never) out.insert(out.end(), {"never", c.form});
      else out.insert(out.end(), {c.aux, "not", c.base});
    } else {
      out.push_back(c.form);
    }
    if (rng.chance(0.35)) out.push_back(rng.pick(lex.intensifiers));
    out.push_back(adjective(rng, lex, surface));
  } else if (form == 2) {  // it was (not) a (very) good film
    static constexpr std::array<std::string_view, 3> subjects = {"it", "this", "that"};
    out.push_back(pick(rng, subjects));
    out.push_back(rng.chance(0.5) ? "is" : "was");
    if (neg) out.push_back(rng.chance(0.3) ? "never" : "not");
    const std::string_view intens = rng.chance(0.35) ? rng.pick(lex.intensifiers) : std::string_view();
    const std::string_view adj = adjective(rng, lex, surface);
    out.push_back(vowel(intens.empty() ? adj : intens) ? "an" : "a");
    if (!intens.empty()) out.push_back(intens);
    out.push_back(adj);
    out.push_back(rng.pick(lex.nouns));
  } else {  // i (did not like | never liked | really liked) the plot
    out.push_back(rng.chance(0.5) ? "i" : "we");
    const std::size_t v = surface ? rng.below(kPositivePast.size()) : rng.below(kNegativePast.size());
    const std::string_view base = surface ? lex.positive_verbs[v] : lex.negative_verbs[v];
    const std::string_view past = surface ? kPositivePast[v] : kNegativePast[v];
    if (neg && rng.chance(0.3)) out.insert(out.end(), {"never", past});
    else if (neg) out.insert(out.end(), {"did", "not", base});
    else {
      if (rng.chance(0.25)) out.push_back(rng.chance(0.5) ? "really" : "truly");
      out.push_back(past);
    }
    out.push_back(rng.pick(lex.determiners));
    out.push_back(rng.pick(lex.nouns));
  }
  return neg;
}

void end_mark(Rng& rng, Words& out) {
  const double u = rng.uniform();
  if (u < 0.6) out.push_back(".");
  else if (u < 0.7) out.push_back("!");
}

}  // namespace

SyntheticSentence synthetic_sentence(Rng& rng, int label, bool contrast, const GrammarOptions& opts) {
  PEFT_CHECK(opts.max_words >= 17, "max_words {} is below the longest contrast sentence", opts.max_words);
  const SyntheticLexicon& lex = synthetic_lexicon();
  const bool y = label != 0;
  SyntheticSentence s;
  s.label = y ? 1 : 0;
  s.contrast = contrast;
  for (;;) {  // redraw until it fits (short forms are likely, so this ends fast)
    Words& w = s.words;
    w.clear();
    s.negated = false;
    if (rng.chance(contrast ? 0.1 : 0.25)) {
      for (std::string_view p : pick(rng, kPrefixes))
        if (!p.empty()) w.push_back(p);
    }
    if (!contrast) {
      s.negated |= clause(rng, lex, y, opts.negation_prob, w);
      if (rng.chance(0.2)) {
        w.push_back("and");
        s.negated |= clause(rng, lex, y, opts.negation_prob, w);
      }
    } else {
      Words a, b;
      s.negated |= clause(rng, lex, !y, opts.negation_prob, a);
      s.negated |= clause(rng, lex, y, opts.negation_prob, b);
      auto cat = [&w](const Words& x) { w.insert(w.end(), x.begin(), x.end()); };
      switch (rng.below(7)) {
        case 0: cat(a); w.insert(w.end(), {",", "but"}); cat(b); break;
        case 1: cat(a); w.push_back("but"); cat(b); break;
        case 2: cat(a); w.insert(w.end(), {",", "yet"}); cat(b); break;
        case 3: w.push_back("although"); cat(a); w.push_back(","); cat(b); break;
        case 4: w.push_back("though"); cat(a); w.push_back(","); cat(b); break;
        case 5: cat(b); w.insert(w.end(), {",", "although"}); cat(a); break;
        default: cat(b); w.push_back("although"); cat(a); break;
      }
    }
    end_mark(rng, w);
    if (static_cast<int>(w.size()) <= opts.max_words) return s;
  }
}

std::string join_words(const std::vector<std::string_view>& words) {
  std::size_t n = words.size();
  for (std::string_view w : words) n += w.size();
  std::string out;
  out.reserve(n);
  for (std::string_view w : words) {
    if (!out.empty()) out.push_back(' ');
    out.append(w);
  }
  return out;
}

}  // namespace peft::data
