#pragma once
// Shared helpers for the unit tests: temporary folders, running a command, and the optional
// real data sets.
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
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

/// A shell command's exit code (-1 when it did not exit) and its stdout and stderr together.
struct CommandResult {
  int code;
  std::string output;
};

inline CommandResult run_command(const std::string& cmd) {
  TempDir dir;
  const std::string out = dir / "out.txt";
  const int status = std::system((cmd + " > " + out + " 2>&1").c_str());
  std::ifstream f(out);
  std::stringstream ss;
  ss << f.rdbuf();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ss.str()};
}

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
