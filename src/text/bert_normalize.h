#pragma once
// Lower-casing and accent stripping of one word, as BertTokenizer does it.
#include <string>
#include <string_view>

namespace peft::text {

/// Appends to `out` the code points of `word` after BertTokenizer's normalisation:
/// with `lowercase`, the full Unicode lower-case mapping of each code point (Python's
/// str.lower(), one character at a time); with `strip_accents`, canonical decomposition
/// (NFD) with the nonspacing marks (Mn) dropped.
void normalize_word(std::u32string_view word, bool lowercase, bool strip_accents,
                    std::u32string& out);

}  // namespace peft::text
