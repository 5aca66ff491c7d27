// Hostile vocabulary files are refused with a message naming the file: numbers out of range,
// deeply nested JSON, no crash.
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"
#include "test_util.h"
#include "text/wordpiece.h"

namespace peft::text {
namespace {

std::string error_of(const std::string& path) {
  try {
    WordPieceTokenizer::from_file(path);
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return {};
}

TEST(VocabHostile, NumberOutOfRangeInTokenizerJson) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "tokenizer.json").string();
  // nlohmann throws out_of_range, not parse_error, for this number: it was not caught.
  std::ofstream(path) << R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": 1e99999}}})";
  EXPECT_NE(error_of(path).find(path), std::string::npos);
}

TEST(VocabHostile, DeeplyNestedTypeIsShownByKind) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "tokenizer.json").string();
  const std::size_t depth = 1'000'000;
  std::ofstream(path) << R"({"model": {"type": )" << std::string(depth, '[') << std::string(depth, ']') << "}}";
  const std::string err = error_of(path);
  EXPECT_NE(err.find("model.type is an array"), std::string::npos) << err.substr(0, 300);
}

}  // namespace
}  // namespace peft::text
