#include "data/wikitext.h"

#include <algorithm>

#include "core/error.h"
#include "data/text_file.h"

namespace peft::data {

WikiTextVariant parse_wikitext_variant(std::string_view name) {
  if (name == "auto") return WikiTextVariant::Auto;
  if (name == "tokens") return WikiTextVariant::Tokens;
  if (name == "raw") return WikiTextVariant::Raw;
  throw_input("WikiText variant must be auto, tokens or raw, got '{}'", name);
}

std::filesystem::path wikitext_file(const std::filesystem::path& dir, std::string_view split,
                                    WikiTextVariant variant) {
  if (split != "train" && split != "valid" && split != "test")
    throw_input("WikiText split must be train, valid or test, got '{}'", split);
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw_input("{}: WikiText folder not found (expected wiki.{{train,valid,test}}.tokens or .raw)",
                dir.string());
  const std::string stem = "wiki." + std::string(split);
  const std::filesystem::path tokens = dir / (stem + ".tokens"), raw = dir / (stem + ".raw");
  switch (variant) {
    case WikiTextVariant::Tokens: return tokens;
    case WikiTextVariant::Raw: return raw;
    case WikiTextVariant::Auto: break;
  }
  if (std::filesystem::exists(tokens, ec)) return tokens;
  if (std::filesystem::exists(raw, ec)) return raw;
  throw_input("{}: neither {} nor {} found", dir.string(), tokens.filename().string(),
              raw.filename().string());
}

std::vector<std::string> read_wikitext_file(const std::filesystem::path& file) {
  const std::string bytes = read_text_file(file);
  if (trim(bytes).empty()) throw_input("{}: empty file", file.string());
  require_utf8(bytes, file);
  std::vector<std::string> lines;
  lines.reserve(static_cast<std::size_t>(std::count(bytes.begin(), bytes.end(), '\n')) + 1);
  for_each_line(bytes, [&](std::size_t, std::string_view line) {
    lines.emplace_back(line);
    return true;
  });
  return lines;
}

std::vector<std::string> read_wikitext(const std::filesystem::path& dir, std::string_view split,
                                       WikiTextVariant variant) {
  return read_wikitext_file(wikitext_file(dir, split, variant));
}

}  // namespace peft::data
