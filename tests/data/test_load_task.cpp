// The Dataset facade: every task name, the vocabulary rules, fixed evaluation masks, and
// the real data sets when present.
#include <algorithm>
#include <chrono>

#include <gtest/gtest.h>

#include "data/dataset.h"
#include "data/synthetic_lexicon.h"
#include "data_test_util.h"
#include "test_util.h"

using namespace peft::data;
using peft::testing::expect_input_error;
using peft::testing::TempDir;
using peft::testing::write_file;

namespace {

void write_vocab(const TempDir& dir, const std::vector<std::string>& words) {
  std::string text;
  for (const auto& w : peft::testing::small_vocab(words)) text += w + "\n";
  write_file(dir / "vocab.txt", text);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST(LoadTask, UnknownNameListsTheKnownOnes) {
  TaskSpec spec;
  spec.name = "glue";
  expect_input_error([&] { load_task(spec); },
                     {"unknown data set 'glue'", "sst2", "imdb", "wikitext2", "synthetic_sentiment", "synthetic_mlm"});
}

TEST(LoadTask, SyntheticSentimentDefaultsAndDeterminism) {
  TaskSpec spec;
  spec.name = "synthetic_sentiment";
  spec.max_length = 24;
  const Task t = load_task(spec);
  EXPECT_EQ(t.kind, TaskKind::Classification);
  EXPECT_EQ(t.num_labels, 2);
  EXPECT_EQ(t.train_cls.size(), 10000);
  EXPECT_EQ(t.eval_cls.size(), 1000);
  EXPECT_EQ(t.vocab, synthetic_vocab());
  EXPECT_TRUE(t.vocab_path.empty());
  ASSERT_TRUE(t.tokenizer);
  EXPECT_EQ(t.tokenizer->vocab_size(), t.vocab.size());
  EXPECT_EQ(t.train_cls.contrast.size(), 10000u);
  EXPECT_LE(t.train_cls.max_length(), 20);  // ≤ 18 words + [CLS] + [SEP]
  EXPECT_EQ(t.train_cls.labels.sum().item<int64_t>(), 5000);
  EXPECT_FALSE(t.train_cls.ids.equal(t.eval_cls.ids.narrow(0, 0, 1000)));  // train ≠ eval
  spec.max_train = 100;
  spec.max_eval = 10;
  const Task small = load_task(spec);
  EXPECT_EQ(small.train_cls.size(), 100);
  EXPECT_EQ(small.eval_cls.size(), 10);
  EXPECT_TRUE(load_task(spec).train_cls.ids.equal(small.train_cls.ids));
  spec.seed = 1;
  EXPECT_FALSE(load_task(spec).train_cls.ids.equal(small.train_cls.ids));
  spec.synthetic_contrast = 0.0;
  const Task easy = load_task(spec);
  EXPECT_EQ(std::count(easy.train_cls.contrast.begin(), easy.train_cls.contrast.end(), 1), 0);
  spec.synthetic_negation = 2.0;
  expect_input_error([&] { load_task(spec); }, {"negation_prob"});
}

TEST(LoadTask, SyntheticMlmBlocksAndFixedEvaluationMasks) {
  TaskSpec spec;
  spec.name = "synthetic_mlm";
  spec.block_size = 32;
  spec.max_train = 300;
  spec.max_eval = 50;
  const Task t = load_task(spec);
  EXPECT_EQ(t.kind, TaskKind::MaskedLM);
  EXPECT_EQ(t.num_labels, 0);
  EXPECT_EQ(t.train_mlm.blocks.sizes(), (std::vector<int64_t>{300, 32}));
  EXPECT_EQ(t.eval_mlm.blocks.sizes(), (std::vector<int64_t>{50, 32}));
  EXPECT_EQ(t.eval_masked.input_ids.sizes(), t.eval_mlm.blocks.sizes());
  EXPECT_GT(t.eval_masked.labels.ne(kIgnoreIndex).sum().item<int64_t>(), 0);
  EXPECT_EQ(t.masking.mask_id, 4);
  // Another trial (another training seed elsewhere) sees the same evaluation masks.
  const Task again = load_task(spec);
  EXPECT_TRUE(again.eval_masked.input_ids.equal(t.eval_masked.input_ids));
  EXPECT_TRUE(again.eval_masked.labels.equal(t.eval_masked.labels));
  EXPECT_EQ(task_kind_name(t.kind), "mlm");
}

TEST(LoadTask, RealTasksNeedAPathAndAVocabulary) {
  TempDir dir;
  write_file(dir / "train.tsv", "sentence\tlabel\ngood film \t1\nbad film \t0\n");
  write_file(dir / "dev.tsv", "sentence\tlabel\ngood \t1\n");
  TaskSpec spec;
  spec.name = "sst2";
  expect_input_error([&] { load_task(spec); }, {"sst2", "path"});
  spec.path = dir.path().string();
  expect_input_error([&] { load_task(spec); }, {"sst2", "model.vocab"});
  write_vocab(dir, {"good", "bad", "film"});
  spec.vocab_path = dir / "vocab.txt";
  const Task t = load_task(spec);
  EXPECT_EQ(t.train_cls.size(), 2);
  EXPECT_EQ(t.eval_cls.size(), 1);
  EXPECT_EQ(t.vocab_path, spec.vocab_path);
  EXPECT_TRUE(t.vocab.empty());
  EXPECT_EQ(t.train_cls.max_length(), 4);  // [CLS] good film [SEP]
}

TEST(LoadTask, FixtureImdbAndWikiText) {
  TempDir dir;
  write_vocab(dir, {"good", "bad", "film", "the", "cat", "=", "."});
  write_file(dir / "imdb/train/pos/0_9.txt", "good film");
  write_file(dir / "imdb/train/neg/0_1.txt", "bad film<br />bad");
  write_file(dir / "imdb/test/pos/0_8.txt", "good");
  write_file(dir / "imdb/test/neg/0_2.txt", "bad");
  TaskSpec spec;
  spec.name = "imdb";
  spec.path = dir / "imdb";
  spec.vocab_path = dir / "vocab.txt";
  const Task imdb = load_task(spec);
  EXPECT_EQ(imdb.train_cls.size(), 2);
  EXPECT_EQ(imdb.train_cls.max_length(), 5);  // [CLS] bad film bad [SEP]

  std::string body;
  for (int i = 0; i < 40; ++i) body += " the cat . \n \n";
  write_file(dir / "wt/wiki.train.raw", " = the cat = \n" + body);
  write_file(dir / "wt/wiki.valid.raw", body);
  spec.name = "wikitext2";
  spec.path = dir / "wt";
  spec.block_size = 8;
  const Task wt = load_task(spec);
  EXPECT_EQ(wt.kind, TaskKind::MaskedLM);
  EXPECT_EQ(wt.train_mlm.size(), (4 + 40 * 3) / 6);
  EXPECT_EQ(wt.eval_mlm.size(), 40 * 3 / 6);
  spec.wikitext_variant = "tokens";
  expect_input_error([&] { load_task(spec); }, {"wiki.train.tokens", "not found"});
  spec.wikitext_variant = "raw";
  spec.block_size = 512;
  expect_input_error([&] { load_task(spec); }, {"fewer tokens than one block"});
}

TEST(LoadTask, RealSst2) {
  PEFT_REQUIRE_SHARED(dir, "sst2");
  PEFT_REQUIRE_SHARED(vocab, "distilbert-base-uncased/vocab.txt");
  TaskSpec spec;
  spec.name = "sst2";
  spec.path = dir;
  spec.vocab_path = vocab;
  const auto t0 = std::chrono::steady_clock::now();
  const Task t = load_task(spec);
  std::printf("sst2: %lld train / %lld eval in %.2f s\n", static_cast<long long>(t.train_cls.size()),
              static_cast<long long>(t.eval_cls.size()), seconds_since(t0));
  EXPECT_EQ(t.train_cls.size(), 67349);
  EXPECT_EQ(t.eval_cls.size(), 872);
  EXPECT_EQ(t.eval_cls.labels.sum().item<int64_t>(), 444);
}

TEST(LoadTask, RealImdbAndWikiTextCapped) {
  PEFT_REQUIRE_SHARED(imdb, "imdb");
  PEFT_REQUIRE_SHARED(wikitext, "wikitext-2");
  PEFT_REQUIRE_SHARED(vocab, "distilbert-base-uncased/vocab.txt");
  TaskSpec spec;
  spec.name = "imdb";
  spec.path = imdb;
  spec.vocab_path = vocab;
  spec.max_length = 256;
  auto t0 = std::chrono::steady_clock::now();
  const Task im = load_task(spec);
  std::printf("imdb: %lld train / %lld eval in %.2f s\n", static_cast<long long>(im.train_cls.size()),
              static_cast<long long>(im.eval_cls.size()), seconds_since(t0));
  EXPECT_EQ(im.train_cls.size(), 1000);
  EXPECT_EQ(im.eval_cls.size(), 1000);
  EXPECT_EQ(im.train_cls.max_length(), 256);
  EXPECT_EQ(im.eval_cls.labels.sum().item<int64_t>(), 500);

  spec.name = "wikitext2";
  spec.path = wikitext;
  spec.block_size = 128;
  spec.max_train = 500;  // tokenising all of train is not needed here
  t0 = std::chrono::steady_clock::now();
  const Task wt = load_task(spec);
  std::printf("wikitext2: %lld train (capped) / %lld valid blocks in %.2f s\n",
              static_cast<long long>(wt.train_mlm.size()), static_cast<long long>(wt.eval_mlm.size()),
              seconds_since(t0));
  EXPECT_EQ(wt.train_mlm.size(), 500);
  EXPECT_GT(wt.eval_mlm.size(), 1500);
  EXPECT_EQ(wt.masking.random_low, 999);
  const double share = static_cast<double>(wt.eval_masked.labels.ne(kIgnoreIndex).sum().item<int64_t>()) /
                       static_cast<double>(wt.eval_mlm.size() * 126);
  EXPECT_NEAR(share, 0.15, 0.01);
}
