// The synthetic sentiment task and MLM corpus: determinism, balance, contrast and negation,
// the vocabulary, and that a bag-of-words model cannot solve the task.
#include <algorithm>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/classification_data.h"
#include "data/mlm_data.h"
#include "data/synthetic_lexicon.h"
#include "data/synthetic_mlm.h"
#include "data/synthetic_sentiment.h"
#include "data_test_util.h"

using namespace peft::data;
using peft::testing::expect_input_error;

namespace {

std::vector<std::string> words_of(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> w;
  for (std::string x; in >> x;) w.push_back(x);
  return w;
}

bool has_word(const std::string& s, const std::string& w) {
  const auto ws = words_of(s);
  return std::find(ws.begin(), ws.end(), w) != ws.end();
}

}  // namespace

TEST(SyntheticVocab, SpecialTokensFirstThenUniqueLowerCaseWords) {
  const std::vector<std::string> v = synthetic_vocab();
  ASSERT_GE(v.size(), 100u);
  EXPECT_LE(v.size(), 140u);
  EXPECT_EQ(std::vector<std::string>(v.begin(), v.begin() + 5),
            (std::vector<std::string>{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}));
  EXPECT_EQ(std::set<std::string>(v.begin(), v.end()).size(), v.size());
  for (std::size_t i = 5; i < v.size(); ++i)
    for (char c : v[i]) EXPECT_TRUE((c >= 'a' && c <= 'z') || c == ',' || c == '.' || c == '!') << v[i];
  const peft::text::WordPieceTokenizer tok(v);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 1);
  EXPECT_EQ(tok.cls_id(), 2);
  EXPECT_EQ(tok.sep_id(), 3);
  EXPECT_EQ(tok.mask_id(), 4);
}

TEST(SyntheticSentiment, SameSeedSameDataOtherSeedOtherData) {
  SyntheticSentimentOptions o;
  o.num_examples = 500;
  o.seed = 7;
  const TextSplit a = synthetic_sentiment(o), b = synthetic_sentiment(o);
  EXPECT_EQ(a.texts, b.texts);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.contrast, b.contrast);
  o.seed = 8;
  EXPECT_NE(synthetic_sentiment(o).texts, a.texts);
}

TEST(SyntheticSentiment, GoldenFirstSentencesForSeedZero) {
  // Pins the generator (mt19937_64 + hand-written draws): any change here changes every
  // result computed on the synthetic task.
  SyntheticSentimentOptions o;
  o.num_examples = 3;
  const TextSplit s = synthetic_sentiment(o);
  EXPECT_EQ(s.texts, (std::vector<std::string>{
                         "i think i disliked the film",
                         "every soundtrack felt incredibly fun and every plot is not genuinely terrible",
                         "its cast felt incredibly horrible"}));
  EXPECT_EQ(s.labels, (std::vector<int64_t>{0, 1, 0}));
}

TEST(SyntheticSentiment, BalancedLabelsAboutHalfContrastWithNegation) {
  SyntheticSentimentOptions o;
  o.num_examples = 10000;
  o.seed = 1;
  const TextSplit s = synthetic_sentiment(o);
  ASSERT_EQ(s.size(), 10000u);
  EXPECT_EQ(std::count(s.labels.begin(), s.labels.end(), 1), 5000);
  const auto contrast = std::count(s.contrast.begin(), s.contrast.end(), 1);
  EXPECT_NEAR(contrast / 10000.0, 0.5, 0.03);

  const peft::text::WordPieceTokenizer tok(synthetic_vocab());
  const auto& lex = synthetic_lexicon();
  auto polar = [&](const std::string& w, const std::vector<std::string_view>& list) {
    return std::find(list.begin(), list.end(), w) != list.end();
  };
  int not_bad_positive = 0, not_good_negative = 0, contrast_with_connective = 0, single_with_connective = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto w = words_of(s.texts[i]);
    ASSERT_LE(w.size(), 18u) << s.texts[i];
    // Every word is one id, none unknown.
    const auto ids = tok.encode(s.texts[i], 0, false);
    ASSERT_EQ(ids.size(), w.size()) << s.texts[i];
    ASSERT_EQ(std::count(ids.begin(), ids.end(), tok.unk_id()), 0) << s.texts[i];
    const bool connective = has_word(s.texts[i], "but") || has_word(s.texts[i], "yet") ||
                            has_word(s.texts[i], "although") || has_word(s.texts[i], "though");
    (s.contrast[i] ? contrast_with_connective : single_with_connective) += connective;
    if (!s.contrast[i] && w.size() >= 2) {
      for (std::size_t k = 0; k + 1 < w.size(); ++k) {
        if (w[k] != "not") continue;
        // The clause's adjective follows within three words: "was not (very) bad",
        // "does not seem (so) bad".
        for (std::size_t j = k + 1; j < std::min(w.size(), k + 4); ++j) {
          if (polar(w[j], lex.negative) && s.labels[i] == 1) ++not_bad_positive;
          if (polar(w[j], lex.positive) && s.labels[i] == 0) ++not_good_negative;
        }
      }
    }
  }
  EXPECT_EQ(contrast_with_connective, contrast);  // every contrast sentence has a connective
  EXPECT_EQ(single_with_connective, 0);
  EXPECT_GT(not_bad_positive, 100);   // "… not bad" → positive
  EXPECT_GT(not_good_negative, 100);  // "… not good" → negative
}

TEST(SyntheticSentiment, BagOfWordsLogisticRegressionStaysBelow85Percent) {
  SyntheticSentimentOptions o;
  o.num_examples = 12000;
  o.seed = 11;
  const TextSplit s = synthetic_sentiment(o);
  const peft::text::WordPieceTokenizer tok(synthetic_vocab());
  const auto V = static_cast<int64_t>(tok.vocab_size());
  const auto N = static_cast<int64_t>(s.size());
  torch::Tensor x = torch::zeros({N, V});
  auto xa = x.accessor<float, 2>();
  for (int64_t i = 0; i < N; ++i)
    for (int32_t id : tok.encode(s.texts[static_cast<std::size_t>(i)], 0, false)) xa[i][id] += 1;
  const torch::Tensor y = torch::tensor(s.labels).to(torch::kFloat);
  const int64_t n_train = 10000;
  torch::Tensor xt = x.narrow(0, 0, n_train), yt = y.narrow(0, 0, n_train);
  torch::Tensor w = torch::zeros({V}, torch::requires_grad()), b = torch::zeros({1}, torch::requires_grad());
  torch::optim::Adam opt({w, b}, torch::optim::AdamOptions(0.1));
  for (int step = 0; step < 300; ++step) {
    opt.zero_grad();
    torch::Tensor loss = torch::binary_cross_entropy_with_logits(xt.matmul(w) + b, yt);
    loss.backward();
    opt.step();
  }
  torch::NoGradGuard ng;
  const torch::Tensor pred = (x.matmul(w) + b).gt(0).to(torch::kFloat);
  const torch::Tensor correct = pred.eq(y).narrow(0, n_train, N - n_train).to(torch::kFloat);
  const torch::Tensor contrast =
      torch::tensor(std::vector<int64_t>(s.contrast.begin(), s.contrast.end())).narrow(0, n_train, N - n_train).to(torch::kBool);
  const double acc = correct.mean().item<double>();
  const double acc_contrast = correct.masked_select(contrast).mean().item<double>();
  const double acc_single = correct.masked_select(contrast.logical_not()).mean().item<double>();
  std::printf("bag-of-words logistic regression: %.3f overall, %.3f contrast, %.3f single clause\n", acc,
              acc_contrast, acc_single);
  EXPECT_LT(acc, 0.85);
  EXPECT_LT(acc_contrast, 0.65);
  EXPECT_GT(acc, 0.55);  // it learns something: the single clauses are partly lexical
}

TEST(SyntheticSentiment, RejectsBadOptions) {
  SyntheticSentimentOptions o;
  o.num_examples = 0;
  expect_input_error([&] { synthetic_sentiment(o); }, {"num_examples"});
  o.num_examples = 10;
  o.max_words = 10;
  expect_input_error([&] { synthetic_sentiment(o); }, {"max_words"});
}

TEST(SyntheticSentiment, TokenisesIntoClassificationTensors) {
  SyntheticSentimentOptions o;
  o.num_examples = 64;
  const TextSplit s = synthetic_sentiment(o);
  const peft::text::WordPieceTokenizer tok(synthetic_vocab());
  ClassificationData d = tokenize_classification(s, tok, 20);
  EXPECT_EQ(d.ids.sizes(), (std::vector<int64_t>{64, d.max_length()}));
  EXPECT_LE(d.max_length(), 20);
  EXPECT_EQ(d.contrast, s.contrast);
  EXPECT_EQ(d.labels.sum().item<int64_t>(), 32);
  for (int64_t i = 0; i < 64; ++i)
    EXPECT_EQ(d.lengths[i].item<int64_t>(), static_cast<int64_t>(words_of(s.texts[static_cast<std::size_t>(i)]).size()) + 2);
  // Truncation keeps [CLS] … [SEP].
  ClassificationData t = tokenize_classification(s, tok, 5);
  EXPECT_EQ(t.max_length(), 5);
  EXPECT_TRUE(t.ids.select(1, 0).eq(tok.cls_id()).all().item<bool>());
}

TEST(SyntheticMlm, DeterministicCorpusOfKnownWords) {
  const auto a = synthetic_mlm_corpus({200, 5}), b = synthetic_mlm_corpus({200, 5});
  EXPECT_EQ(a, b);
  EXPECT_NE(synthetic_mlm_corpus({200, 6}), a);
  const peft::text::WordPieceTokenizer tok(synthetic_vocab());
  MlmData d = make_mlm_blocks(a, tok, 32);
  EXPECT_GT(d.size(), 50);
  EXPECT_FALSE(d.blocks.eq(tok.unk_id()).any().item<bool>());
  EXPECT_TRUE(d.blocks.select(1, 0).eq(tok.cls_id()).all().item<bool>());
}
