#pragma once
// Character classes of BERT's BasicTokenizer (transformers models/bert/tokenization_bert.py:
// _is_whitespace, _is_control, _is_punctuation, _is_chinese_char) on Unicode code points.
// Categories come from utf8proc, so the Unicode version is utf8proc's (15.0 for 2.8), which is
// Python 3.12's; older Pythons see characters added since as unassigned (Cn → removed).
#include <array>
#include <cstdint>

namespace peft::text::bert_chars {

/// Per-byte classes of the ASCII range, looked up in the hot loop.
enum AsciiClass : uint8_t { kAsciiOther = 0, kAsciiRemoved, kAsciiSpace, kAsciiPunct };

inline constexpr std::array<uint8_t, 128> kAsciiClasses = [] {
  std::array<uint8_t, 128> t{};
  for (int c = 0; c < 128; ++c) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      t[c] = kAsciiSpace;
    } else if (c < 0x20 || c == 0x7f) {
      t[c] = kAsciiRemoved;  // NUL and category Cc
    } else if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
               (c >= 123 && c <= 126)) {
      // BERT counts every non-alphanumeric printable ASCII character as punctuation,
      // including $ + < = > ^ ` | ~ which Unicode files under S*.
      t[c] = kAsciiPunct;
    }
  }
  return t;
}();

/// _clean_text drops it: NUL, U+FFFD, or _is_control (category C*, except \t \n \r).
bool is_removed(char32_t c);
/// A word boundary after cleaning: _is_whitespace (space, \t, \n, \r, Zs) plus U+2028 and
/// U+2029, which survive _clean_text (Zl/Zp are not C*) but split in Python's str.split().
bool is_whitespace(char32_t c);
/// _is_punctuation: the ASCII ranges above or Unicode category P*.
bool is_punctuation(char32_t c);
/// _is_chinese_char: the CJK Unified Ideographs blocks (not Hangul, Hiragana, Katakana).
bool is_chinese_char(char32_t c);
/// Unicode category Mn (the marks _run_strip_accents drops after NFD).
bool is_nonspacing_mark(char32_t c);

}  // namespace peft::text::bert_chars
