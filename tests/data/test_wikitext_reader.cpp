// WikiText-2 reader and the MLM block pipeline: variants, blank lines, headings, block
// layout, dropped tail, caps, malformed files, the real valid split.
#include <gtest/gtest.h>

#include "data/mlm_data.h"
#include "data/wikitext.h"
#include "data_test_util.h"
#include "test_util.h"

using namespace peft::data;
using peft::testing::expect_input_error;
using peft::testing::small_vocab;
using peft::testing::TempDir;
using peft::testing::write_file;

namespace {

const std::string kValid = " \n = Lobster = \n \n the cat sat on the mat . \n the dog ran . \n \n";

peft::text::WordPieceTokenizer tokenizer() {
  return peft::text::WordPieceTokenizer(
      small_vocab({"=", "lobster", "the", "cat", "sat", "on", "mat", ".", "dog", "ran"}));
}

}  // namespace

TEST(WikiTextReader, ReturnsEveryLineIncludingBlankOnes) {
  TempDir dir;
  write_file(dir / "wiki.valid.tokens", kValid);
  std::vector<std::string> lines = read_wikitext(dir.path(), "valid");
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[1], " = Lobster = ");
  EXPECT_EQ(lines[5], " ");
}

TEST(WikiTextReader, PicksTheVariant) {
  TempDir dir;
  write_file(dir / "wiki.test.raw", "raw text\n");
  EXPECT_EQ(wikitext_file(dir.path(), "test").filename(), "wiki.test.raw");  // only .raw exists
  write_file(dir / "wiki.test.tokens", "tokens text\n");
  EXPECT_EQ(wikitext_file(dir.path(), "test").filename(), "wiki.test.tokens");  // .tokens preferred
  EXPECT_EQ(read_wikitext(dir.path(), "test", WikiTextVariant::Raw)[0], "raw text");
  EXPECT_EQ(read_wikitext(dir.path(), "test", parse_wikitext_variant("tokens"))[0], "tokens text");
  expect_input_error([] { parse_wikitext_variant("v1"); }, {"auto, tokens or raw"});
}

TEST(WikiTextReader, MalformedFiles) {
  TempDir dir;
  expect_input_error([&] { read_wikitext(dir.path(), "train"); }, {"wiki.train.tokens", "wiki.train.raw", "neither"});
  expect_input_error([&] { read_wikitext(dir.path(), "train", WikiTextVariant::Raw); }, {dir / "wiki.train.raw", "not found"});
  expect_input_error([&] { read_wikitext(dir / "missing", "train"); }, {dir / "missing", "not found"});
  write_file(dir / "wiki.train.tokens", " \n \n");
  expect_input_error([&] { read_wikitext(dir.path(), "train"); }, {dir / "wiki.train.tokens", "empty file"});
  write_file(dir / "wiki.train.tokens", " = A = \n \n fine line \n bad \xC3 line \n");
  expect_input_error([&] { read_wikitext(dir.path(), "train"); }, {dir / "wiki.train.tokens:4:", "invalid UTF-8"});
  expect_input_error([&] { read_wikitext(dir.path(), "dev"); }, {"train, valid or test"});
}

TEST(MlmBlocks, ClsBodySepFromConcatenatedNonBlankLines) {
  const auto tok = tokenizer();
  const std::vector<std::string> lines = {" ", " = Lobster = ", " ", " the cat sat on the mat . ", " the dog ran . ", " "};
  // Stream: = lobster = the cat sat on the mat . the dog ran .  (14 pieces)
  MlmData d = make_mlm_blocks(lines, tok, 6);  // body 4 → 3 blocks, 2 pieces dropped
  ASSERT_EQ(d.blocks.sizes(), (std::vector<int64_t>{3, 6}));
  EXPECT_EQ(d.dropped_tokens, 2);
  auto id = [&](const char* w) { return static_cast<int64_t>(tok.token_to_id(w)); };
  const std::vector<int64_t> expect = {
      tok.cls_id(), id("="),   id("lobster"), id("="),   id("the"), tok.sep_id(),
      tok.cls_id(), id("cat"), id("sat"),     id("on"),  id("the"), tok.sep_id(),
      tok.cls_id(), id("mat"), id("."),       id("the"), id("dog"), tok.sep_id()};
  std::vector<int64_t> got(d.blocks.data_ptr<int64_t>(), d.blocks.data_ptr<int64_t>() + d.blocks.numel());
  EXPECT_EQ(got, expect);
}

TEST(MlmBlocks, CapAndErrors) {
  const auto tok = tokenizer();
  std::vector<std::string> lines(100, "the cat sat on the mat .");
  EXPECT_EQ(make_mlm_blocks(lines, tok, 9, 5).size(), 5);
  EXPECT_EQ(make_mlm_blocks(lines, tok, 9).size(), 100);
  EXPECT_EQ(make_mlm_blocks({"the cat"}, tok, 9).size(), 0);  // shorter than one block
  expect_input_error([&] { make_mlm_blocks(lines, tok, 2); }, {"block_size"});
}

TEST(WikiTextReader, RealValidSplit) {
  PEFT_REQUIRE_SHARED(dir, "wikitext-2");
  std::vector<std::string> valid = read_wikitext(dir, "valid");
  ASSERT_EQ(valid.size(), 3760u);
  EXPECT_EQ(valid[1], " = Homarus gammarus = ");
  EXPECT_EQ(read_wikitext(dir, "test").size(), 4358u);
  PEFT_REQUIRE_SHARED(vocab, "distilbert-base-uncased/vocab.txt");
  const auto tok = peft::text::WordPieceTokenizer::from_file(vocab);
  MlmData d = make_mlm_blocks(valid, tok, 128);
  std::printf("WikiText-2 valid: %lld blocks of 128, %lld pieces dropped\n", static_cast<long long>(d.size()),
              static_cast<long long>(d.dropped_tokens));
  EXPECT_GT(d.size(), 1500);
  EXPECT_TRUE(d.blocks.select(1, 0).eq(tok.cls_id()).all().item<bool>());
  EXPECT_TRUE(d.blocks.select(1, 127).eq(tok.sep_id()).all().item<bool>());
  EXPECT_FALSE(d.blocks.narrow(1, 1, 126).eq(tok.pad_id()).any().item<bool>());
}
