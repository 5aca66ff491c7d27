#pragma once
// Shared helpers for the unit tests: temporary folders and the optional real data sets.
#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <stdlib.h>

namespace peft::testing {

/// A fresh temporary folder removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "peft-test-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// Path inside ../shared/data, or empty when the real data is not present.
inline std::string shared_data(const std::string& rel) {
  std::filesystem::path p = std::filesystem::path(PEFT_SHARED_DATA) / rel;
  return std::filesystem::exists(p) ? p.string() : std::string();
}

}  // namespace peft::testing

/// Skip the current test when a real data file is absent.
#define PEFT_REQUIRE_SHARED(var, rel)                                              \
  const std::string var = ::peft::testing::shared_data(rel);                       \
  if (var.empty()) GTEST_SKIP() << "../shared/data/" << (rel) << " not present"
