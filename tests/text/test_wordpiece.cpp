// WordPieceTokenizer: each BertTokenizer rule on a small hand-written vocabulary, loading
// errors, and golden ids of Hugging Face's tokenizer on the real distilbert vocabulary.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "test_util.h"
#include "text/bert_normalize.h"
#include "text/wordpiece.h"

namespace peft::text {
namespace {

using Pieces = std::vector<std::string>;
using Ids = std::vector<int32_t>;

// clang-format off
const std::vector<std::string> kVocab = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",                      // 0-4
    "the",   "quick", "brown", "fox",   "un",     "##aff", "##able",  // 5-11
    "cafe",  "naive", ",",     ".",     "!",      "'",     "don",     // 12-18
    "t",     "a",     "##a",   "b",     "c",      "中",    "文",      // 19-25
    "jump",  "##ed",  "##ing", "$",     "café",   "x",     "[",       // 26-32
    "mask",  "]",     "i",     "istanbul", "ω",                      // 33-37
};
// clang-format on

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

std::string vocab_txt(const std::vector<std::string>& vocab, const char* eol = "\n") {
  std::string s;
  for (const auto& t : vocab) s += t + eol;
  return s;
}

class SmallVocab : public ::testing::Test {
 protected:
  void SetUp() override { write_file(dir_ / "vocab.txt", vocab_txt(kVocab)); }
  WordPieceTokenizer load(TokenizerOptions opts = {}) {
    return WordPieceTokenizer::from_file(dir_ / "vocab.txt", opts);
  }
  testing::TempDir dir_;
};

TEST_F(SmallVocab, FindsSpecialTokensByName) {
  auto tok = load();
  EXPECT_EQ(tok.vocab_size(), kVocab.size());
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 1);
  EXPECT_EQ(tok.cls_id(), 2);
  EXPECT_EQ(tok.sep_id(), 3);
  EXPECT_EQ(tok.mask_id(), 4);
  EXPECT_EQ(tok.token_to_id("fox"), 8);
  EXPECT_EQ(tok.token_to_id("wolf"), tok.unk_id());
  EXPECT_EQ(tok.id_to_token(7), "brown");
  EXPECT_THROW(tok.id_to_token(-1), std::out_of_range);
  EXPECT_THROW(tok.id_to_token(static_cast<int32_t>(kVocab.size())), std::out_of_range);
}

TEST_F(SmallVocab, LowerCasesText) {
  auto tok = load();
  EXPECT_EQ(tok.tokenize("The QUICK bRoWn"), (Pieces{"the", "quick", "brown"}));
  TokenizerOptions cased;
  cased.lowercase = false;
  EXPECT_EQ(load(cased).tokenize("The quick"), (Pieces{"[UNK]", "quick"}));
  // Non-ASCII upper case lowers too (Ω → ω).
  EXPECT_EQ(tok.tokenize("Ω"), (Pieces{"ω"}));
}

TEST_F(SmallVocab, StripsAccentsAfterNfd) {
  auto tok = load();
  EXPECT_EQ(tok.tokenize("Café NAÏVE"), (Pieces{"cafe", "naive"}));
  EXPECT_EQ(tok.tokenize("cafe\u0301"), (Pieces{"cafe"}));  // decomposed input
  TokenizerOptions keep;
  keep.strip_accents = false;
  EXPECT_EQ(load(keep).tokenize("Café naïve"), (Pieces{"café", "[UNK]"}));
}

TEST_F(SmallVocab, SplitsOnPunctuation) {
  auto tok = load();
  EXPECT_EQ(tok.tokenize("don't"), (Pieces{"don", "'", "t"}));
  EXPECT_EQ(tok.tokenize("a,b.c!!"), (Pieces{"a", ",", "b", ".", "c", "!", "!"}));
  // BERT counts all non-alphanumeric printable ASCII as punctuation, '$' included.
  EXPECT_EQ(tok.tokenize("a$b"), (Pieces{"a", "$", "b"}));
  // Unicode P* is punctuation too: U+2019 splits, and matches nothing here.
  EXPECT_EQ(tok.tokenize("don\u2019t"), (Pieces{"don", "[UNK]", "t"}));
}

TEST_F(SmallVocab, SplitsCjkCharacters) {
  auto tok = load();
  EXPECT_EQ(tok.tokenize("a中文b"), (Pieces{"a", "中", "文", "b"}));
  TokenizerOptions no_cjk;
  no_cjk.tokenize_chinese_chars = false;
  EXPECT_EQ(load(no_cjk).tokenize("a中文b"), (Pieces{"[UNK]"}));
}

TEST_F(SmallVocab, RemovesControlCharacters) {
  auto tok = load();
  EXPECT_EQ(tok.tokenize(std::string("f\0ox", 4)), (Pieces{"fox"}));  // NUL
  EXPECT_EQ(tok.tokenize("f\x01o\x7fx"), (Pieces{"fox"}));            // Cc
  EXPECT_EQ(tok.tokenize("f\u200do\ufeffx"), (Pieces{"fox"}));        // Cf: ZWJ, BOM
  EXPECT_EQ(tok.tokenize("f\ufffdox"), (Pieces{"fox"}));              // U+FFFD
  EXPECT_EQ(tok.tokenize("f\u0378ox"), (Pieces{"fox"}));              // unassigned (Cn)
}

TEST_F(SmallVocab, SplitsOnWhitespace) {
  auto tok = load();
  EXPECT_EQ(tok.tokenize(" the\tquick\r\nbrown\u00a0fox\u3000a\u2028b "),
            (Pieces{"the", "quick", "brown", "fox", "a", "b"}));
  EXPECT_TRUE(tok.tokenize(" \t\n ").empty());
  EXPECT_TRUE(tok.tokenize("").empty());
}

TEST_F(SmallVocab, UsesContinuationPieces) {
  auto tok = load();
  EXPECT_EQ(tok.tokenize("unaffable"), (Pieces{"un", "##aff", "##able"}));
  EXPECT_EQ(tok.tokenize("jumped jumping"), (Pieces{"jump", "##ed", "jump", "##ing"}));
  EXPECT_EQ(tok.tokenize("aaa"), (Pieces{"a", "##a", "##a"}));
}

TEST_F(SmallVocab, GivesUnkForUnmatchableWord) {
  auto tok = load();
  // A suffix with no "##" piece makes the whole word [UNK], not just the tail.
  EXPECT_EQ(tok.tokenize("unaffablez fox"), (Pieces{"[UNK]", "fox"}));
  EXPECT_EQ(tok.tokenize("zzz"), (Pieces{"[UNK]"}));
}

TEST_F(SmallVocab, GivesUnkForWordsOverMaxChars) {
  auto tok = load();
  EXPECT_EQ(tok.tokenize(std::string(100, 'a')).size(), 100u);
  EXPECT_EQ(tok.tokenize(std::string(101, 'a')), (Pieces{"[UNK]"}));
  // The limit counts characters after normalisation, not bytes.
  std::string accented;
  for (int i = 0; i < 80; ++i) accented += "\u00e1";  // 160 bytes, 80 characters
  EXPECT_EQ(tok.tokenize(accented).size(), 80u);
  TokenizerOptions short_words;
  short_words.max_input_chars_per_word = 3;
  EXPECT_EQ(load(short_words).tokenize("aaa aaaa"), (Pieces{"a", "##a", "##a", "[UNK]"}));
}

TEST_F(SmallVocab, MapsSpecialTokenNamesInText) {
  auto tok = load();
  EXPECT_EQ(tok.encode("the [MASK] fox[SEP]"), (Ids{2, 5, 4, 8, 3, 3}));
  EXPECT_EQ(tok.tokenize("[mask] [MASK"), (Pieces{"[", "mask", "]", "[", "mask"}));
  TokenizerOptions plain;
  plain.split_special_tokens = true;
  EXPECT_EQ(load(plain).tokenize("[MASK]"), (Pieces{"[", "mask", "]"}));
}

TEST_F(SmallVocab, LowerCasesDottedCapitalIAsPython) {
  auto tok = load();
  EXPECT_EQ(tok.tokenize("İSTANBUL"), (Pieces{"istanbul"}));
  // Python's str.lower() maps U+0130 to "i" + U+0307 (two code points).
  std::u32string out;
  normalize_word(U"\u0130", true, false, out);
  EXPECT_EQ(out, U"i\u0307");
  out.clear();
  normalize_word(U"\u0130", true, true, out);
  EXPECT_EQ(out, U"i");
  // Lower-casing is per character: a final capital sigma becomes σ, not ς.
  out.clear();
  normalize_word(U"\u039f\u03a3", true, true, out);
  EXPECT_EQ(out, U"\u03bf\u03c3");
}

TEST_F(SmallVocab, RejectsInvalidUtf8) {
  auto tok = load();
  for (std::string bad : {std::string("fox\xff"), std::string("\xc3"), std::string("\xed\xa0\x80"),
                          std::string("\xc0\xaf"), std::string("\xf4\x90\x80\x80")}) {
    EXPECT_THROW(tok.tokenize(bad), InputError) << "input bytes: " << bad.size();
    EXPECT_THROW(tok.encode(bad), InputError);
  }
}

TEST_F(SmallVocab, EncodeAddsClsAndSepAndTruncates) {
  auto tok = load();
  EXPECT_EQ(tok.encode("the quick brown fox"), (Ids{2, 5, 6, 7, 8, 3}));
  EXPECT_EQ(tok.encode("the quick brown fox", 4), (Ids{2, 5, 6, 3}));
  EXPECT_EQ(tok.encode("the quick brown fox", 6), (Ids{2, 5, 6, 7, 8, 3}));
  EXPECT_EQ(tok.encode("the quick brown fox", 2), (Ids{2, 3}));
  EXPECT_EQ(tok.encode("", 0), (Ids{2, 3}));
  EXPECT_EQ(tok.encode("the quick brown fox", 3, false), (Ids{5, 6, 7}));
  EXPECT_EQ(tok.encode("the quick", 0, false), (Ids{5, 6}));
  EXPECT_THROW(tok.encode("the", 1), InputError);
  EXPECT_THROW(tok.encode("the", -1), InputError);
}

TEST_F(SmallVocab, PadsBatchToLongestOrMaxLength) {
  auto tok = load();
  std::vector<std::string> texts = {"the fox", "the quick brown fox", ""};
  EncodedBatch longest = tok.encode_batch(texts, 0);
  EXPECT_EQ(longest.batch, 3);
  EXPECT_EQ(longest.seq, 6);
  EXPECT_EQ(longest.ids, (std::vector<int64_t>{2, 5, 8, 3, 0, 0,  //
                                               2, 5, 6, 7, 8, 3,  //
                                               2, 3, 0, 0, 0, 0}));
  EXPECT_EQ(longest.mask, (std::vector<int64_t>{1, 1, 1, 1, 0, 0,  //
                                                1, 1, 1, 1, 1, 1,  //
                                                1, 1, 0, 0, 0, 0}));
  EncodedBatch truncated = tok.encode_batch(texts, 5, Padding::Longest);
  EXPECT_EQ(truncated.seq, 5);
  EXPECT_EQ(std::vector<int64_t>(truncated.ids.begin() + 5, truncated.ids.begin() + 10),
            (std::vector<int64_t>{2, 5, 6, 7, 3}));
  EncodedBatch fixed = tok.encode_batch({"the fox"}, 8, Padding::MaxLength);
  EXPECT_EQ(fixed.seq, 8);
  EXPECT_EQ(fixed.ids, (std::vector<int64_t>{2, 5, 8, 3, 0, 0, 0, 0}));
  EXPECT_EQ(fixed.mask, (std::vector<int64_t>{1, 1, 1, 1, 0, 0, 0, 0}));
  EXPECT_THROW(tok.encode_batch(texts, 0, Padding::MaxLength), InputError);
  EncodedBatch empty = tok.encode_batch({}, 0);
  EXPECT_EQ(empty.batch, 0);
  EXPECT_TRUE(empty.ids.empty());
}

TEST_F(SmallVocab, TokenizerJsonLoadsLikeVocabTxt) {
  nlohmann::json vocab = nlohmann::json::object();
  for (std::size_t i = 0; i < kVocab.size(); ++i) vocab[kVocab[i]] = i;  // stored sorted by key
  nlohmann::json j = {{"version", "1.0"},
                      {"model", {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"vocab", vocab}}}};
  write_file(dir_ / "tokenizer.json", j.dump(2));
  auto from_json = WordPieceTokenizer::from_file(dir_ / "tokenizer.json");
  auto from_txt = load();
  ASSERT_EQ(from_json.vocab_size(), from_txt.vocab_size());
  for (int32_t id = 0; id < static_cast<int32_t>(kVocab.size()); ++id)
    EXPECT_EQ(from_json.id_to_token(id), from_txt.id_to_token(id));
  const std::string text = "The quick brown fox, unaffable! Café 中文 [MASK]";
  EXPECT_EQ(from_json.encode(text), from_txt.encode(text));
}

TEST_F(SmallVocab, AcceptsCrLfAndCrLineEnds) {
  write_file(dir_ / "crlf.txt", vocab_txt(kVocab, "\r\n"));
  write_file(dir_ / "cr.txt", vocab_txt(kVocab, "\r"));
  std::string no_final_newline = vocab_txt(kVocab);
  no_final_newline.pop_back();
  write_file(dir_ / "nofinal.txt", no_final_newline);
  auto reference = load();
  for (const char* name : {"crlf.txt", "cr.txt", "nofinal.txt"}) {
    auto tok = WordPieceTokenizer::from_file(dir_ / name);
    EXPECT_EQ(tok.vocab_size(), kVocab.size()) << name;
    EXPECT_EQ(tok.encode("the quick fox"), reference.encode("the quick fox")) << name;
  }
}

// The message of the InputError thrown by `f`, or "" when none is thrown.
template <typename F>
std::string input_error(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& message, const std::string& part) {
  return message.find(part) != std::string::npos;
}

TEST_F(SmallVocab, ReportsMalformedVocabularies) {
  const std::string missing = dir_ / "missing.txt";
  EXPECT_PRED2(contains, input_error([&] { WordPieceTokenizer::from_file(missing); }), missing);

  write_file(dir_ / "empty.txt", "");
  EXPECT_PRED2(contains, input_error([&] { WordPieceTokenizer::from_file(dir_ / "empty.txt"); }),
               "empty.txt: vocabulary file is empty");

  write_file(dir_ / "dup.txt", "[PAD]\n[UNK]\nfox\nthe\nfox\n");
  EXPECT_PRED2(contains, input_error([&] { WordPieceTokenizer::from_file(dir_ / "dup.txt"); }),
               "dup.txt:5: token 'fox' duplicates line 3");

  write_file(dir_ / "utf8.txt", "[PAD]\n[UNK]\nf\xffx\n");
  EXPECT_PRED2(contains, input_error([&] { WordPieceTokenizer::from_file(dir_ / "utf8.txt"); }),
               "utf8.txt:3: vocabulary token is not valid UTF-8");

  write_file(dir_ / "nounk.txt", "[PAD]\nfox\n");
  EXPECT_PRED2(contains, input_error([&] { WordPieceTokenizer::from_file(dir_ / "nounk.txt"); }),
               "nounk.txt: WordPiece vocabulary has no [UNK] token");

  write_file(dir_ / "gap.json",
             R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "fox": 2}}})");
  EXPECT_PRED2(contains, input_error([&] { WordPieceTokenizer::from_file(dir_ / "gap.json"); }),
               "gap.json: model.vocab[\"fox\"] = 2 is outside 0..1");

  write_file(dir_ / "twice.json", R"({"model": {"vocab": {"[UNK]": 0, "fox": 0}}})");
  EXPECT_PRED2(contains, input_error([&] { WordPieceTokenizer::from_file(dir_ / "twice.json"); }),
               "id 0 is given to both");

  write_file(dir_ / "bpe.json", R"({"model": {"type": "BPE", "vocab": {"[UNK]": 0}}})");
  EXPECT_PRED2(contains, input_error([&] { WordPieceTokenizer::from_file(dir_ / "bpe.json"); }),
               "expected \"WordPiece\"");

  write_file(dir_ / "broken.json", R"({"model": {"vocab": {"[UNK]": 0,)");
  EXPECT_PRED2(contains, input_error([&] { WordPieceTokenizer::from_file(dir_ / "broken.json"); }),
               "broken.json: not a valid tokenizer.json");

  write_file(dir_ / "novocab.json", R"({"model": {"type": "WordPiece"}})");
  EXPECT_PRED2(contains, input_error([&] { WordPieceTokenizer::from_file(dir_ / "novocab.json"); }),
               "no model.vocab");

  EXPECT_THROW(WordPieceTokenizer(std::vector<std::string>{}), InputError);
  EXPECT_THROW(WordPieceTokenizer(std::vector<std::string>{"[UNK]", "a", "a"}), InputError);
}

// ---- Golden ids of Hugging Face's tokenizer on the real distilbert-base-uncased vocabulary.

std::string fixture(const std::string& name) {
  return std::string(PEFT_FIXTURES) + "/tokenizer/" + name;
}

Ids parse_ids(const std::string& s) {
  Ids ids;
  std::istringstream in(s);
  int32_t id;
  while (in >> id) ids.push_back(id);
  return ids;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

TEST(WordPieceGolden, EdgeCasesMatchHuggingFace) {
  PEFT_REQUIRE_SHARED(vocab, "distilbert-base-uncased/vocab.txt");
  auto tok = WordPieceTokenizer::from_file(vocab);
  std::ifstream in(fixture("edge_cases.jsonl"));
  ASSERT_TRUE(in) << fixture("edge_cases.jsonl");
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    const std::string text = j["text"].get<std::string>();
    const Ids expected = j["ids"].get<Ids>();
    EXPECT_EQ(tok.encode(text), expected) << "case " << j["name"].get<std::string>();
    ++cases;
  }
  EXPECT_GE(cases, 40);
}

TEST(WordPieceGolden, RealDataMatchesHuggingFace) {
  PEFT_REQUIRE_SHARED(vocab, "distilbert-base-uncased/vocab.txt");
  auto tok = WordPieceTokenizer::from_file(vocab);
  std::ifstream in(fixture("real_data_ids.tsv"));
  ASSERT_TRUE(in);
  std::map<std::string, std::vector<std::string>> files;
  std::map<std::string, int> rows_per_source;
  std::string row;
  while (std::getline(in, row)) {
    if (row.empty() || row[0] == '#') continue;
    std::istringstream fields(row);
    std::string source, line_no, field, ids;
    std::getline(fields, source, '\t');
    std::getline(fields, line_no, '\t');
    std::getline(fields, field, '\t');
    std::getline(fields, ids);
    const std::string path = testing::shared_data(source);
    if (path.empty()) GTEST_SKIP() << "../shared/data/" << source << " not present";
    std::string text;
    if (field == "file") {
      text = read_file(path);
    } else {
      auto [it, fresh] = files.try_emplace(path);
      if (fresh) it->second = read_lines(path);
      const std::size_t n = std::stoul(line_no);
      ASSERT_LE(n, it->second.size()) << source;
      text = it->second[n - 1];
      if (field == "tsv0")
        text = text.substr(0, text.find('\t'));
      else
        ASSERT_EQ(field, "line");
    }
    EXPECT_EQ(tok.encode(text), parse_ids(ids)) << source << ":" << line_no;
    ++rows_per_source[source.substr(0, source.find('/'))];
  }
  EXPECT_EQ(rows_per_source["sst2"], 300);
  EXPECT_EQ(rows_per_source["imdb"], 200);
  EXPECT_EQ(rows_per_source["wikitext-2"], 300);
}

TEST(WordPieceGolden, TokenizerJsonMatchesVocabTxt) {
  PEFT_REQUIRE_SHARED(vocab, "distilbert-base-uncased/vocab.txt");
  PEFT_REQUIRE_SHARED(json, "distilbert-base-uncased/tokenizer.json");
  auto a = WordPieceTokenizer::from_file(vocab);
  auto b = WordPieceTokenizer::from_file(json);
  ASSERT_EQ(a.vocab_size(), 30522u);
  ASSERT_EQ(b.vocab_size(), a.vocab_size());
  for (int32_t id = 0; id < static_cast<int32_t>(a.vocab_size()); ++id)
    ASSERT_EQ(a.id_to_token(id), b.id_to_token(id)) << "id " << id;
  EXPECT_EQ(a.pad_id(), 0);
  EXPECT_EQ(a.unk_id(), 100);
  EXPECT_EQ(a.cls_id(), 101);
  EXPECT_EQ(a.sep_id(), 102);
  EXPECT_EQ(a.mask_id(), 103);
}

// Not a pass/fail benchmark: prints how long the whole WikiText-2 train split takes.
TEST(WordPieceGolden, TokenizesWikiTextTrain) {
  PEFT_REQUIRE_SHARED(vocab, "distilbert-base-uncased/vocab.txt");
  PEFT_REQUIRE_SHARED(train, "wikitext-2/wiki.train.tokens");
  auto tok = WordPieceTokenizer::from_file(vocab);
  const std::vector<std::string> lines = read_lines(train);
  auto t0 = std::chrono::steady_clock::now();
  std::size_t ids = 0;
  for (const auto& line : lines) ids += tok.encode(line).size();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wiki.train.tokens: %zu lines, %zu ids (with [CLS]/[SEP]) in %.3f s\n", lines.size(),
              ids, s);
  RecordProperty("seconds", std::to_string(s));
  EXPECT_EQ(lines.size(), 36718u);
}

}  // namespace
}  // namespace peft::text
