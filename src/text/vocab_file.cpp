// WordPieceTokenizer::from_file: vocab.txt or tokenizer.json, told apart by content.
#include <utf8proc.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "core/json_excerpt.h"
#include "text/wordpiece.h"

namespace peft::text {

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input("cannot open vocabulary file '{}': {}", path, std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw_input("cannot read vocabulary file '{}'", path);
  return std::move(buf).str();
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  std::size_t i = 0;
  while (i < s.size()) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    utf8proc_int32_t cp;
    utf8proc_ssize_t n = utf8proc_iterate(p + i, static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    if (n <= 0) return false;
    i += static_cast<std::size_t>(n);
  }
  return true;
}

bool looks_like_json(std::string_view content) {
  if (content.starts_with("\xEF\xBB\xBF")) content.remove_prefix(3);
  std::size_t p = content.find_first_not_of(" \t\r\n");
  return p != std::string_view::npos && content[p] == '{';
}

// HF's load_vocab reads the file in Python's text mode (universal newlines: "\n", "\r\n" and
// "\r" all end a line) and strips the trailing "\n"; the id of a token is its line number,
// counted from 0. A last line without a newline still counts; empty lines are tokens ("").
std::vector<std::string> parse_vocab_txt(const std::string& path, std::string_view content) {
  std::vector<std::string> vocab;
  std::unordered_map<std::string_view, std::size_t> seen;
  std::size_t pos = 0;
  while (pos < content.size()) {
    std::size_t eol = content.find_first_of("\r\n", pos);
    std::string_view token = content.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
    const std::size_t line = vocab.size() + 1;
    if (!valid_utf8(token)) throw_input("{}:{}: vocabulary token is not valid UTF-8", path, line);
    auto [it, inserted] = seen.emplace(token, line);
    if (!inserted)
      throw_input("{}:{}: token '{}' duplicates line {}", path, line, token, it->second);
    vocab.emplace_back(token);
    if (eol == std::string_view::npos) break;
    pos = eol + (content.compare(eol, 2, "\r\n") == 0 ? 2 : 1);
  }
  if (vocab.empty()) throw_input("{}: vocabulary file is empty", path);
  return vocab;
}

std::vector<std::string> parse_tokenizer_json(const std::string& path, const std::string& content) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(content);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number such as 1e99999
    throw_input("{}: not a valid tokenizer.json (it starts with '{{'): {}", path, e.what());
  }
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
    throw_input("{}: tokenizer.json has no \"model\" object", path);
  const nlohmann::json& model = j["model"];
  if (model.contains("type") && model["type"] != "WordPiece")
    throw_input("{}: model.type is {}, expected \"WordPiece\"", path, json_excerpt(model["type"]));
  if (!model.contains("vocab") || !model["vocab"].is_object())
    throw_input("{}: tokenizer.json has no model.vocab object", path);
  const nlohmann::json& entries = model["vocab"];
  if (entries.empty()) throw_input("{}: model.vocab is empty", path);
  std::vector<std::string> vocab(entries.size());
  std::vector<bool> filled(entries.size(), false);
  for (auto it = entries.begin(); it != entries.end(); ++it) {
    if (!it.value().is_number_integer())
      throw_input("{}: model.vocab[\"{}\"] is {}, expected an integer id", path, it.key(),
                  json_excerpt(it.value()));
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || static_cast<std::size_t>(id) >= vocab.size())
      throw_input(
          "{}: model.vocab[\"{}\"] = {} is outside 0..{}: ids must run from 0 with no gaps and no "
          "duplicate tokens",
          path, it.key(), id, vocab.size() - 1);
    if (filled[static_cast<std::size_t>(id)])
      throw_input("{}: model.vocab: id {} is given to both '{}' and '{}'", path, id,
                  vocab[static_cast<std::size_t>(id)], it.key());
    vocab[static_cast<std::size_t>(id)] = it.key();
    filled[static_cast<std::size_t>(id)] = true;
  }
  return vocab;
}

}  // namespace

WordPieceTokenizer WordPieceTokenizer::from_file(const std::string& path, TokenizerOptions opts) {
  const std::string content = read_all(path);
  if (content.empty()) throw_input("{}: vocabulary file is empty", path);
  std::vector<std::string> vocab = looks_like_json(content) ? parse_tokenizer_json(path, content)
                                                            : parse_vocab_txt(path, content);
  try {
    return WordPieceTokenizer(std::move(vocab), opts);
  } catch (const InputError& e) {
    throw InputError(fmt::format("{}: {}", path, e.what()));
  }
}

}  // namespace peft::text
