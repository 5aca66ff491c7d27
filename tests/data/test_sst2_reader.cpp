// GLUE SST-2 TSV reader: the official layout, every malformed case, the real files.
#include <chrono>

#include <gtest/gtest.h>

#include "data/classification_data.h"
#include "data/sst2.h"
#include "data/text_file.h"
#include "data_test_util.h"
#include "test_util.h"

using namespace peft::data;
using peft::testing::expect_input_error;
using peft::testing::TempDir;
using peft::testing::write_file;

TEST(Sst2Reader, ReadsTrainLayoutWithSpaceBeforeTab) {
  TempDir dir;
  write_file(dir / "train.tsv", "sentence\tlabel\nhide new secretions from the parental units \t0\n"
                                "it 's a charming and often affecting journey . \t1\n");
  TextSplit s = read_sst2(dir.path(), "train");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s.texts[0], "hide new secretions from the parental units");
  EXPECT_EQ(s.texts[1], "it 's a charming and often affecting journey .");
  EXPECT_EQ(s.labels, (std::vector<int64_t>{0, 1}));
  EXPECT_TRUE(s.contrast.empty());
}

TEST(Sst2Reader, ReadsTestLayoutWithoutLabels) {
  TempDir dir;
  write_file(dir / "test.tsv", "index\tsentence\n0\tuneasy mishmash of styles and genres .\n1\tgood\n");
  TextSplit s = read_sst2(dir.path(), "test");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s.texts[0], "uneasy mishmash of styles and genres .");
  EXPECT_EQ(s.labels, (std::vector<int64_t>{-1, -1}));
}

TEST(Sst2Reader, AcceptsCrlfAndMissingFinalNewline) {
  TempDir dir;
  write_file(dir / "dev.tsv", "sentence\tlabel\r\ngood \t1\r\nbad \t0");
  TextSplit s = read_sst2(dir.path(), "dev");
  EXPECT_EQ(s.texts, (std::vector<std::string>{"good", "bad"}));
  EXPECT_EQ(s.labels, (std::vector<int64_t>{1, 0}));
}

TEST(Sst2Reader, MaxRowsKeepsTheFirstRows) {
  TempDir dir;
  write_file(dir / "dev.tsv", "sentence\tlabel\na \t1\nb \t0\nc \t1\n");
  EXPECT_EQ(read_sst2(dir.path(), "dev", 2).texts, (std::vector<std::string>{"a", "b"}));
}

TEST(Sst2Reader, MissingHeaderNamesLineOne) {
  TempDir dir;
  write_file(dir / "dev.tsv", "good film \t1\n");
  expect_input_error([&] { read_sst2(dir.path(), "dev"); }, {dir / "dev.tsv:1:", "missing header"});
}

TEST(Sst2Reader, WrongColumnCountNamesTheLine) {
  TempDir dir;
  write_file(dir / "dev.tsv", "sentence\tlabel\ngood \t1\nno label here\n");
  expect_input_error([&] { read_sst2(dir.path(), "dev"); }, {dir / "dev.tsv:3:", "2 tab-separated columns", "found 1"});
  write_file(dir / "dev.tsv", "sentence\tlabel\ngood \t1\t1\n");
  expect_input_error([&] { read_sst2(dir.path(), "dev"); }, {dir / "dev.tsv:2:", "found 3"});
  write_file(dir / "dev.tsv", "sentence\tlabel\ngood \t1\n\nbad \t0\n");  // blank line mid-file
  expect_input_error([&] { read_sst2(dir.path(), "dev"); }, {dir / "dev.tsv:3:"});
}

TEST(Sst2Reader, LabelMustBeZeroOrOne) {
  TempDir dir;
  for (std::string bad : {"2", "pos", "", "-1", "01"}) {
    write_file(dir / "train.tsv", "sentence\tlabel\ngood \t1\nbad \t" + bad + "\n");
    expect_input_error([&] { read_sst2(dir.path(), "train"); }, {dir / "train.tsv:3:", "label must be 0 or 1"});
  }
}

TEST(Sst2Reader, EmptySentenceIsAnError) {
  TempDir dir;
  write_file(dir / "train.tsv", "sentence\tlabel\n \t1\n");
  expect_input_error([&] { read_sst2(dir.path(), "train"); }, {dir / "train.tsv:2:", "empty sentence"});
}

TEST(Sst2Reader, TestIndexMustBeAnInteger) {
  TempDir dir;
  write_file(dir / "test.tsv", "index\tsentence\nx\tgood\n");
  expect_input_error([&] { read_sst2(dir.path(), "test"); }, {dir / "test.tsv:2:", "index"});
}

TEST(Sst2Reader, EmptyFileAndHeaderOnlyFile) {
  TempDir dir;
  write_file(dir / "dev.tsv", "");
  expect_input_error([&] { read_sst2(dir.path(), "dev"); }, {dir / "dev.tsv", "empty file"});
  write_file(dir / "dev.tsv", "sentence\tlabel\n");
  expect_input_error([&] { read_sst2(dir.path(), "dev"); }, {dir / "dev.tsv", "no rows"});
}

TEST(Sst2Reader, BadUtf8NamesLineAndColumn) {
  TempDir dir;
  write_file(dir / "dev.tsv", "sentence\tlabel\ngood \t1\nfine \t1\nca\xC3\x28 \t0\n");
  expect_input_error([&] { read_sst2(dir.path(), "dev"); }, {dir / "dev.tsv:4:", "invalid UTF-8", "column 3"});
}

TEST(Sst2Reader, MissingFileAndFolder) {
  TempDir dir;
  expect_input_error([&] { read_sst2(dir.path(), "dev"); }, {dir / "dev.tsv", "not found"});
  expect_input_error([&] { read_sst2(dir / "nope", "dev"); }, {dir / "nope", "not found"});
  expect_input_error([&] { read_sst2(dir.path(), "validation"); }, {"train, dev or test"});
}

TEST(Utf8, ValidatorRejectsMalformedSequences) {
  EXPECT_EQ(find_invalid_utf8("plain ascii text, long enough for the fast path"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("ab\x80"), 2u);                 // lone continuation byte
  EXPECT_EQ(find_invalid_utf8("\xC0\xAF"), 0u);               // overlong
  EXPECT_EQ(find_invalid_utf8("\xED\xA0\x80"), 0u);           // surrogate
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);       // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("abcdefgh\xE2\x82"), 8u);       // truncated at the end
}

TEST(Sst2Reader, RealDevTrainAndTest) {
  PEFT_REQUIRE_SHARED(dir, "sst2");
  TextSplit dev = read_sst2(dir, "dev");
  ASSERT_EQ(dev.size(), 872u);
  EXPECT_EQ(std::count(dev.labels.begin(), dev.labels.end(), 1), 444);
  EXPECT_EQ(dev.texts[0], "it 's a charming and often affecting journey .");
  const auto t0 = std::chrono::steady_clock::now();
  TextSplit train = read_sst2(dir, "train");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(train.size(), 67349u);
  EXPECT_EQ(std::count(train.labels.begin(), train.labels.end(), 1), 37569);
  EXPECT_EQ(train.texts[0], "hide new secretions from the parental units");
  EXPECT_LT(seconds, 1.0);
  TextSplit test = read_sst2(dir, "test");
  EXPECT_EQ(test.size(), 1821u);
  EXPECT_EQ(test.texts[0], "uneasy mishmash of styles and genres .");
  EXPECT_EQ(std::count(test.labels.begin(), test.labels.end(), -1), 1821);
}

TEST(Sst2Reader, RealTrainTokenisesQuickly) {
  PEFT_REQUIRE_SHARED(dir, "sst2");
  PEFT_REQUIRE_SHARED(vocab, "distilbert-base-uncased/vocab.txt");
  const auto tok = peft::text::WordPieceTokenizer::from_file(vocab);
  TextSplit train = read_sst2(dir, "train");
  const auto t0 = std::chrono::steady_clock::now();
  ClassificationData d = tokenize_classification(train, tok, 128);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("SST-2 train: %lld rows tokenised in %.3f s, longest %lld tokens\n",
              static_cast<long long>(d.size()), seconds, static_cast<long long>(d.max_length()));
  EXPECT_EQ(d.size(), 67349);
  EXPECT_LE(d.max_length(), 128);
  EXPECT_LT(seconds, 4.0);
  // "hide new secretions from the parental units" → [CLS] hide new secret ##ions from the parental units [SEP]
  EXPECT_EQ(d.ids[0][0].item<int64_t>(), tok.cls_id());
  const int64_t len0 = d.lengths[0].item<int64_t>();
  EXPECT_EQ(d.ids[0][len0 - 1].item<int64_t>(), tok.sep_id());
  EXPECT_EQ(d.mask.sum().item<int64_t>(), d.lengths.sum().item<int64_t>());
}
