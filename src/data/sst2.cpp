#include "data/sst2.h"

#include <algorithm>
#include <charconv>

#include "core/error.h"
#include "data/text_file.h"

namespace peft::data {

namespace {

constexpr std::string_view kLabelledHeader = "sentence\tlabel";
constexpr std::string_view kTestHeader = "index\tsentence";

}  // namespace

TextSplit read_sst2_tsv(const std::filesystem::path& file, int64_t max_rows) {
  const std::string bytes = read_text_file(file);
  const std::string name = file.string();
  if (bytes.empty()) throw_input("{}: empty file, expected the header '{}'", name, excerpt(kLabelledHeader));
  require_utf8(bytes, file);

  TextSplit split;
  split.source = name;
  // A row is ~55 bytes in train.tsv: reserve close to the final size, once.
  split.reserve(bytes.size() / 48 + 1);
  bool labelled = true;
  for_each_line(bytes, [&](std::size_t line_no, std::string_view line) {
    if (line_no == 1) {
      if (line == kLabelledHeader) labelled = true;
      else if (line == kTestHeader) labelled = false;
      else
        throw_input("{}:1: missing header: expected '{}' (train/dev) or '{}' (test), found '{}'",
                    name, excerpt(kLabelledHeader), excerpt(kTestHeader), excerpt(line));
      return true;
    }
    if (max_rows > 0 && static_cast<int64_t>(split.size()) >= max_rows) return false;
    const std::size_t tab = line.find('\t');
    const auto columns = static_cast<std::size_t>(std::count(line.begin(), line.end(), '\t')) + 1;
    if (columns != 2)
      throw_input("{}:{}: expected 2 tab-separated columns ({}), found {}: '{}'", name, line_no,
                  labelled ? "sentence, label" : "index, sentence", columns, excerpt(line));
    std::string_view sentence = labelled ? line.substr(0, tab) : line.substr(tab + 1);
    const std::string_view other = labelled ? line.substr(tab + 1) : line.substr(0, tab);
    int64_t label = -1;
    if (labelled) {
      const std::string_view l = trim(other);
      if (l != "0" && l != "1")
        throw_input("{}:{}: label must be 0 or 1, found '{}'", name, line_no, excerpt(other));
      label = l[0] - '0';
    } else {
      const std::string_view idx = trim(other);
      int64_t value = 0;
      auto [end, ec] = std::from_chars(idx.data(), idx.data() + idx.size(), value);
      if (idx.empty() || ec != std::errc() || end != idx.data() + idx.size() || value < 0)
        throw_input("{}:{}: index must be a non-negative integer, found '{}'", name, line_no,
                    excerpt(other));
    }
    sentence = trim(sentence);
    if (sentence.empty()) throw_input("{}:{}: empty sentence", name, line_no);
    split.texts.emplace_back(sentence);
    split.labels.push_back(label);
    return true;
  });
  if (split.size() == 0) throw_input("{}: no rows after the header", name);
  return split;
}

TextSplit read_sst2(const std::filesystem::path& dir, std::string_view split, int64_t max_rows) {
  if (split != "train" && split != "dev" && split != "test")
    throw_input("SST-2 split must be train, dev or test, got '{}'", split);
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw_input("{}: SST-2 folder not found (expected train.tsv, dev.tsv, test.tsv)", dir.string());
  return read_sst2_tsv(dir / (std::string(split) + ".tsv"), max_rows);
}

}  // namespace peft::data
