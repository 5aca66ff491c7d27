#include "data/imdb.h"

#include <algorithm>
#include <charconv>
#include <vector>

#include "core/error.h"
#include "data/text_file.h"

namespace peft::data {

namespace {

struct ReviewFile {
  int64_t id;
  std::filesystem::path path;
};

bool parse_number(std::string_view s, int64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

/// The review files of one class folder, sorted by numeric id.
std::vector<ReviewFile> list_reviews(const std::filesystem::path& folder) {
  std::error_code ec;
  if (!std::filesystem::is_directory(folder, ec))
    throw_input("{}: IMDB folder not found (expected the aclImdb layout <root>/{{train,test}}/{{pos,neg}})",
                folder.string());
  std::vector<ReviewFile> files;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    const std::size_t underscore = name.find('_');
    int64_t id = -1, rating = -1;
    const bool ok = entry.is_regular_file() && name.size() > 4 &&
                    name.compare(name.size() - 4, 4, ".txt") == 0 &&
                    underscore != std::string::npos &&
                    parse_number(std::string_view(name).substr(0, underscore), id) &&
                    parse_number(std::string_view(name).substr(underscore + 1, name.size() - 4 - underscore - 1), rating) &&
                    rating >= 0 && rating <= 10;
    if (!ok)
      throw_input("{}: not an IMDB review file: expected a file named <id>_<rating>.txt (rating 0-10)",
                  entry.path().string());
    files.push_back({id, entry.path()});
  }
  if (files.empty()) throw_input("{}: no review files", folder.string());
  std::sort(files.begin(), files.end(), [](const ReviewFile& a, const ReviewFile& b) {
    return a.id != b.id ? a.id < b.id : a.path < b.path;
  });
  return files;
}

std::string read_review(const std::filesystem::path& file) {
  const std::string bytes = read_text_file(file);
  require_utf8(bytes, file);
  std::string text = clean_imdb_review(bytes);
  const std::string_view t = trim(text);
  if (t.empty()) throw_input("{}: empty review", file.string());
  return std::string(t);
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

std::string clean_imdb_review(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '<' && i + 3 <= text.size() && lower(text[i + 1]) == 'b' &&
        lower(text[i + 2]) == 'r') {
      std::size_t j = i + 3;
      while (j < text.size() && text[j] == ' ') ++j;
      if (j < text.size() && text[j] == '/') ++j;
      while (j < text.size() && text[j] == ' ') ++j;
      if (j < text.size() && text[j] == '>') {
        out.push_back(' ');
        i = j + 1;
        continue;
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

TextSplit read_imdb(const std::filesystem::path& root, std::string_view split, int64_t max_examples) {
  if (split != "train" && split != "test")
    throw_input("IMDB split must be train or test, got '{}'", split);
  std::error_code ec;
  std::filesystem::path base = root;
  if (!std::filesystem::is_directory(base / std::string(split), ec) &&
      std::filesystem::is_directory(root / "aclImdb", ec))
    base = root / "aclImdb";
  const std::filesystem::path dir = base / std::string(split);
  if (!std::filesystem::is_directory(dir, ec))
    throw_input("{}: IMDB split folder not found", dir.string());

  std::vector<ReviewFile> neg = list_reviews(dir / "neg");
  std::vector<ReviewFile> pos = list_reviews(dir / "pos");
  if (max_examples > 0) {
    const auto total = static_cast<std::size_t>(max_examples);
    std::size_t want_pos = (total + 1) / 2, want_neg = total / 2;
    if (pos.size() < want_pos) want_neg += want_pos - pos.size();
    if (neg.size() < want_neg) want_pos += want_neg - neg.size();
    if (pos.size() > want_pos) pos.resize(want_pos);
    if (neg.size() > want_neg) neg.resize(want_neg);
  }

  TextSplit out;
  out.source = dir.string();
  out.reserve(pos.size() + neg.size());
  for (std::size_t i = 0; i < std::max(pos.size(), neg.size()); ++i) {
    if (i < neg.size()) {
      out.texts.push_back(read_review(neg[i].path));
      out.labels.push_back(0);
    }
    if (i < pos.size()) {
      out.texts.push_back(read_review(pos[i].path));
      out.labels.push_back(1);
    }
  }
  return out;
}

}  // namespace peft::data
