// IMDB aclImdb reader: layout, <br /> cleaning, deterministic balanced caps, malformed
// trees, the real 2,000-review subset.
#include <algorithm>
#include <cctype>

#include <gtest/gtest.h>

#include "data/imdb.h"
#include "data_test_util.h"
#include "test_util.h"

using namespace peft::data;
using peft::testing::expect_input_error;
using peft::testing::TempDir;
using peft::testing::write_file;

namespace {

void write_tree(const TempDir& dir) {
  write_file(dir / "aclImdb/train/pos/0_9.txt", "Bromwell High is a cartoon comedy.<br /><br />Great.");
  write_file(dir / "aclImdb/train/pos/10_7.txt", "pos ten");
  write_file(dir / "aclImdb/train/pos/2_8.txt", "pos two<br/>and<BR>more<br >end");
  write_file(dir / "aclImdb/train/neg/1_2.txt", "neg one");
  write_file(dir / "aclImdb/train/neg/3_1.txt", "neg three");
  write_file(dir / "aclImdb/test/pos/0_10.txt", "test pos");
  write_file(dir / "aclImdb/test/neg/0_1.txt", "test neg");
}

bool contains_br(const std::string& s) {
  std::string lower(s.size(), ' ');
  std::transform(s.begin(), s.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower.find("<br") != std::string::npos;
}

}  // namespace

TEST(ImdbReader, LabelsFromFoldersOrderedByNumericIdAlternating) {
  TempDir dir;
  write_tree(dir);
  TextSplit s = read_imdb(dir / "aclImdb", "train");
  ASSERT_EQ(s.size(), 5u);
  // neg and pos alternate, each by ascending numeric id (10 after 2).
  EXPECT_EQ(s.texts, (std::vector<std::string>{"neg one", "Bromwell High is a cartoon comedy.  Great.", "neg three",
                                                "pos two and more end", "pos ten"}));
  EXPECT_EQ(s.labels, (std::vector<int64_t>{0, 1, 0, 1, 1}));
}

TEST(ImdbReader, AcceptsTheFolderAboveAclImdb) {
  TempDir dir;
  write_tree(dir);
  TextSplit s = read_imdb(dir.path(), "test");
  EXPECT_EQ(s.texts, (std::vector<std::string>{"test neg", "test pos"}));
  EXPECT_EQ(s.labels, (std::vector<int64_t>{0, 1}));
}

TEST(ImdbReader, CleansEveryBreakTagForm) {
  EXPECT_EQ(clean_imdb_review("a<br />b<br/>c<br>d<BR />e<Br  / >f"), "a b c d e f");
  EXPECT_EQ(clean_imdb_review("x <b>bold</b> <bra> <br"), "x <b>bold</b> <bra> <br");
}

TEST(ImdbReader, CapIsBalancedAndTakesTheLowestIds) {
  TempDir dir;
  write_tree(dir);
  TextSplit s = read_imdb(dir.path(), "train", 3);
  EXPECT_EQ(s.labels, (std::vector<int64_t>{0, 1, 1}));  // ceil(3/2) positive
  EXPECT_EQ(s.texts[0], "neg one");
  EXPECT_EQ(s.texts[2], "pos two and more end");
  // A class that runs short is filled in by the other: 1 neg in test, cap 2 → 1 + 1.
  EXPECT_EQ(read_imdb(dir.path(), "test", 2).size(), 2u);
  EXPECT_EQ(read_imdb(dir.path(), "train", 100).size(), 5u);
}

TEST(ImdbReader, MissingFolders) {
  TempDir dir;
  expect_input_error([&] { read_imdb(dir.path(), "train"); }, {dir / "train", "not found"});
  write_file(dir / "train/pos/0_9.txt", "good");
  expect_input_error([&] { read_imdb(dir.path(), "train"); }, {dir / "train/neg", "not found"});
  std::filesystem::create_directories(dir / "train/neg");
  expect_input_error([&] { read_imdb(dir.path(), "train"); }, {dir / "train/neg", "no review files"});
  expect_input_error([&] { read_imdb(dir.path(), "unsup"); }, {"train or test"});
}

TEST(ImdbReader, BadFileNamesAreNamed) {
  for (std::string bad : {"abc.txt", "5.txt", "5_x.txt", "5_3.text", "_3.txt", "5_11.txt"}) {
    TempDir dir;
    write_file(dir / "train/pos/0_9.txt", "good");
    write_file(dir / "train/neg/0_1.txt", "bad");
    write_file(dir / ("train/neg/" + bad), "bad");
    expect_input_error([&] { read_imdb(dir.path(), "train"); }, {dir / ("train/neg/" + bad), "<id>_<rating>.txt"});
  }
}

TEST(ImdbReader, EmptyReviewAndBadUtf8NameTheFile) {
  TempDir dir;
  write_file(dir / "train/pos/0_9.txt", "good");
  write_file(dir / "train/neg/0_1.txt", " <br /> ");
  expect_input_error([&] { read_imdb(dir.path(), "train"); }, {dir / "train/neg/0_1.txt", "empty review"});
  write_file(dir / "train/neg/0_1.txt", "bad \xFF review");
  expect_input_error([&] { read_imdb(dir.path(), "train"); }, {dir / "train/neg/0_1.txt:1:", "invalid UTF-8"});
}

TEST(ImdbReader, RealSubset) {
  PEFT_REQUIRE_SHARED(dir, "imdb");
  TextSplit train = read_imdb(dir, "train");
  TextSplit test = read_imdb(dir, "test");
  ASSERT_EQ(train.size(), 1000u);
  ASSERT_EQ(test.size(), 1000u);
  EXPECT_EQ(std::count(train.labels.begin(), train.labels.end(), 1), 500);
  EXPECT_EQ(std::count(test.labels.begin(), test.labels.end(), 1), 500);
  for (const auto* split : {&train, &test})
    for (const std::string& t : split->texts) ASSERT_FALSE(contains_br(t)) << t.substr(0, 80);
  EXPECT_EQ(train.texts[1].rfind("Bromwell High is a cartoon comedy.", 0), 0u);  // train/pos/0_9.txt
  EXPECT_EQ(test.texts[1].rfind("I went and saw this movie last night", 0), 0u);  // test/pos/0_10.txt
  TextSplit capped = read_imdb(dir, "train", 10);
  EXPECT_EQ(capped.size(), 10u);
  EXPECT_EQ(std::count(capped.labels.begin(), capped.labels.end(), 1), 5);
}
