#pragma once
// Reading the text files of the data sets: whole-file reads, UTF-8 validation and line
// iteration, with errors that name the file and the line (core/error.h: peft::InputError).
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace peft::data {

/// The file's bytes. Missing or unreadable → InputError naming the file.
std::string read_text_file(const std::filesystem::path& path);

/// Offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no overlong
/// forms, no surrogates, nothing above U+10FFFF), or std::string_view::npos.
std::size_t find_invalid_utf8(std::string_view s);

/// Throws InputError "<file>:<line>: invalid UTF-8 (byte 0xNN at column C)" when `text`
/// (the content of `file`) is not valid UTF-8; `first_line` is the line number of text[0].
void require_utf8(std::string_view text, const std::filesystem::path& file, std::size_t first_line = 1);

/// Calls f(line_number, line) for every line (1-based), without its '\n' and a trailing
/// '\r'. A final line without '\n' counts; the empty string after a final '\n' does not.
/// f returns false to stop early.
template <typename F>
void for_each_line(std::string_view text, F&& f) {
  std::size_t number = 0, pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!f(++number, line)) return;
    pos = end + 1;
  }
}

/// `s` without leading and trailing ASCII whitespace.
std::string_view trim(std::string_view s);

/// A short, printable excerpt of `s` for error messages.
std::string excerpt(std::string_view s, std::size_t max_chars = 60);

}  // namespace peft::data
