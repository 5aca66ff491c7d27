// Hostile safetensors headers are refused with a message, without recursing as deep as the
// input nests (a shape of [[[[…]]]] a million levels deep).
#include <cstdint>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace peft::st {
namespace {

std::string error_of(const std::string& path) {
  try {
    SafetensorsReader r(path);
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return {};
}

void write_with_header(const std::string& path, const std::string& header) {
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header;
}

TEST(SafetensorsHostile, DeeplyNestedShapeIsRefusedWithoutRecursion) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "deep.safetensors").string();
  const std::size_t depth = 1'000'000;
  const std::string header = R"({"t": {"dtype": "F32", "shape": [)" + std::string(depth, '[') + std::string(depth, ']') +
                             R"(], "data_offsets": [0, 0]}})";
  write_with_header(path, header);
  const std::string err = error_of(path);
  EXPECT_NE(err.find("'t'"), std::string::npos) << err.substr(0, 300);
  EXPECT_LT(err.size(), 1000u);  // the value is shown by kind, not dumped
}

TEST(SafetensorsHostile, HugeNumberInHeaderIsAnInputError) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "num.safetensors").string();
  write_with_header(path, R"({"t": {"dtype": "F32", "shape": [1e99999], "data_offsets": [0, 4]}})");
  EXPECT_FALSE(error_of(path).empty());
}

}  // namespace
}  // namespace peft::st
