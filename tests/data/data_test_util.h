#pragma once
// Helpers of the data-layer tests: writing fixture files and checking InputError messages.
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"

namespace peft::testing {

inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  ASSERT_TRUE(out.good()) << path;
}

/// Runs `f`, expects peft::InputError whose message contains every needle.
inline void expect_input_error(const std::function<void()>& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "expected peft::InputError containing '" << (needles.empty() ? "" : needles[0]) << "'";
  } catch (const peft::InputError& e) {
    const std::string msg = e.what();
    for (const std::string& n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << "message '" << msg << "' lacks '" << n << "'";
  }
}

/// A small WordPiece vocabulary: the five special tokens, then `words`.
inline std::vector<std::string> small_vocab(const std::vector<std::string>& words) {
  std::vector<std::string> v = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  v.insert(v.end(), words.begin(), words.end());
  return v;
}

}  // namespace peft::testing
