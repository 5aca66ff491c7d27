#include "core/vocab_path.h"

#include <filesystem>

namespace peft {
namespace fs = std::filesystem;

std::string find_vocab(const std::string& dir) {
  std::error_code ec;
  for (const char* name : {"vocab.txt", "tokenizer.json"}) {
    const auto p = fs::path(dir) / name;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return "";
}

std::string resolve_vocab(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  if (fs::is_directory(path, ec)) return find_vocab(path);
  return "";
}

}  // namespace peft
