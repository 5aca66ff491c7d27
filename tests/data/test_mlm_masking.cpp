// BERT masking: proportions on 100k tokens, special tokens untouched, labels -100 except
// at selected positions, determinism with a fixed seed and variation with a running generator.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/mlm_masking.h"
#include "data/synthetic_lexicon.h"
#include "data_test_util.h"
#include "test_util.h"

using namespace peft::data;

namespace {

MaskingOptions options() {
  return MaskingOptions::for_tokenizer(peft::text::WordPieceTokenizer(synthetic_vocab()));
}

/// 100k tokens: blocks of 100 = [CLS] 97 ordinary tokens [PAD] [SEP].
torch::Tensor corpus(const MaskingOptions& o) {
  at::Generator g = make_generator(99);
  torch::Tensor ids = torch::randint(o.random_low, o.random_high, {1000, 100}, g, torch::TensorOptions(torch::kInt64));
  ids.select(1, 0).fill_(2);
  ids.select(1, 98).fill_(0);
  ids.select(1, 99).fill_(3);
  return ids;
}

}  // namespace

TEST(MlmMasking, OptionsFromTheVocabulary) {
  const MaskingOptions o = options();
  EXPECT_EQ(o.random_low, 5);
  EXPECT_EQ(o.random_high, static_cast<int64_t>(synthetic_vocab().size()));
  EXPECT_EQ(o.mask_id, 4);
  EXPECT_EQ(o.special_ids, (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

TEST(MlmMasking, BertVocabularyKeepsUnusedTokensOutOfTheRandomRange) {
  PEFT_REQUIRE_SHARED(vocab, "distilbert-base-uncased/vocab.txt");
  const MaskingOptions o = MaskingOptions::for_tokenizer(peft::text::WordPieceTokenizer::from_file(vocab));
  EXPECT_EQ(o.random_low, 999);  // [PAD], [unused0..993], [UNK], [CLS], [SEP], [MASK] below
  EXPECT_EQ(o.random_high, 30522);
  EXPECT_EQ(o.mask_id, 103);
}

TEST(MlmMasking, ProportionsOn100kTokens) {
  const MaskingOptions o = options();
  const torch::Tensor ids = corpus(o);
  const MaskedTokens m = mask_tokens(ids, o, 1234);
  const torch::Tensor eligible = ids.ge(o.random_low);
  const double n_eligible = eligible.sum().item<double>();
  ASSERT_EQ(n_eligible, 97000);
  const torch::Tensor selected = m.labels.ne(kIgnoreIndex);
  const double n_sel = selected.sum().item<double>();
  const double masked = m.input_ids.eq(o.mask_id).logical_and(selected).sum().item<double>();
  const double changed = m.input_ids.ne(ids).logical_and(m.input_ids.ne(o.mask_id)).sum().item<double>();
  const double kept = m.input_ids.eq(ids).logical_and(selected).sum().item<double>();
  std::printf("selected %.4f of eligible; of those: mask %.4f, random %.4f, kept %.4f\n", n_sel / n_eligible,
              masked / n_sel, changed / n_sel, kept / n_sel);
  EXPECT_NEAR(n_sel / n_eligible, 0.15, 0.005);  // σ ≈ 0.0011
  EXPECT_NEAR(masked / n_sel, 0.8, 0.015);       // σ ≈ 0.0033
  // A random replacement equals the original with probability 1/|range| and then counts as kept.
  EXPECT_NEAR(changed / n_sel, 0.1 * (1 - 1.0 / (o.random_high - o.random_low)), 0.01);
  EXPECT_NEAR(kept / n_sel, 0.1, 0.01);
}

TEST(MlmMasking, LabelsOnlyAtSelectedPositionsAndSpecialsUntouched) {
  const MaskingOptions o = options();
  const torch::Tensor ids = corpus(o);
  const MaskedTokens m = mask_tokens(ids, o, 5);
  const torch::Tensor selected = m.labels.ne(kIgnoreIndex);
  EXPECT_TRUE(m.labels.masked_select(selected).equal(ids.masked_select(selected)));  // originals
  EXPECT_TRUE(m.input_ids.masked_select(selected.logical_not()).equal(ids.masked_select(selected.logical_not())));
  const torch::Tensor special = ids.lt(o.random_low);
  EXPECT_FALSE(selected.logical_and(special).any().item<bool>());
  EXPECT_TRUE(m.input_ids.masked_select(special).equal(ids.masked_select(special)));
  // Random replacements come from the ordinary range.
  const torch::Tensor changed = m.input_ids.ne(ids).logical_and(m.input_ids.ne(o.mask_id));
  EXPECT_TRUE(m.input_ids.masked_select(changed).ge(o.random_low).all().item<bool>());
  EXPECT_EQ(m.input_ids.scalar_type(), torch::kInt64);
  EXPECT_EQ(m.labels.scalar_type(), torch::kInt64);
  EXPECT_TRUE(ids.equal(corpus(o)));  // input not modified
}

TEST(MlmMasking, FixedSeedIsDeterministicRunningGeneratorVaries) {
  const MaskingOptions o = options();
  const torch::Tensor ids = corpus(o).narrow(0, 0, 64);
  const MaskedTokens a = mask_tokens(ids, o, 77), b = mask_tokens(ids, o, 77);
  EXPECT_TRUE(a.input_ids.equal(b.input_ids));
  EXPECT_TRUE(a.labels.equal(b.labels));
  EXPECT_FALSE(mask_tokens(ids, o, 78).labels.equal(a.labels));
  at::Generator g = make_generator(77);
  const MaskedTokens first = mask_tokens(ids, o, g), second = mask_tokens(ids, o, g);
  EXPECT_TRUE(first.labels.equal(a.labels));  // a fresh generator with seed 77 = mask_tokens(…, 77)
  EXPECT_FALSE(second.labels.equal(first.labels));
}

TEST(MlmMasking, RejectsBadOptions) {
  MaskingOptions o = options();
  o.probability = 1.5;
  peft::testing::expect_input_error([&] { o.validate(); }, {"probability"});
  o = options();
  o.mask_fraction = 0.95;
  peft::testing::expect_input_error([&] { o.validate(); }, {"fractions"});
  peft::testing::expect_input_error(
      [] { MaskingOptions::for_tokenizer(peft::text::WordPieceTokenizer({"[UNK]", "[MASK]"})); }, {"range"});
}

TEST(MlmMasking, TrainMaskSeedIsPinned) {
  // bench/sweep_draws.py (mlm_mask_seed) reproduces this for the reference runs of
  // bench/hf_reference.py, and tests/python/test_sweep_draws.py pins the same three values.
  EXPECT_EQ(train_mask_seed(1, 0, 5, 0), 11400714817041636694ULL);
  EXPECT_EQ(train_mask_seed(7, 2, 3, 8), 6018027432190031726ULL);
  EXPECT_EQ(train_mask_seed((1ULL << 40) + 3, 1, 99, 5), 2675844284971656879ULL);
}
