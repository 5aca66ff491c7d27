#pragma once
// Shared by the libFuzzer harnesses: a private scratch folder for the readers that take
// paths, and the rule for what counts as a finding.
//
// A reader may refuse its input only with peft::InputError (std::invalid_argument): any
// other exception escapes the harness and libFuzzer reports it, as it does crashes, hangs,
// leaks and sanitizer reports.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "core/error.h"

namespace peft::fuzz {

/// A folder of this process's own under /tmp (removed at exit).
inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "peft-fuzz-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) std::abort();
    static const std::string keep = tmpl;
    std::atexit([] { std::error_code ec; std::filesystem::remove_all(keep, ec); });
    return std::filesystem::path(tmpl);
  }();
  return dir;
}

/// Writes `bytes` to `path` (creating its folder), replacing what was there.
inline void write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) std::abort();
}

/// Runs f(); an InputError is the reader refusing bad input, which is fine.
template <typename F>
void refuse_ok(F&& f) {
  try {
    f();
  } catch (const peft::InputError&) {
  }
}

}  // namespace peft::fuzz
