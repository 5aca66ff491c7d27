#include "text/bert_normalize.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>

#include "core/error.h"
#include "text/bert_chars.h"

namespace peft::text {

namespace {

constexpr char32_t kCapitalIWithDot = 0x0130;  // İ
constexpr char32_t kCombiningDotAbove = 0x0307;

// utf8proc_tolower is the simple (one-to-one) case mapping; Python's str.lower() uses the
// full mapping, which differs only for U+0130 ("İ" → "i̇", two code points).
// Final-sigma (Σ → ς at the end of a word) is not applied: transformers' tokenize() lowers
// the text one character at a time (re.sub with "(.+?)") before BasicTokenizer, where a
// lone Σ becomes σ; the Rust tokenizer lowers per character too.
template <typename F>
void lower_char(char32_t c, F&& emit) {
  if (c < 128) {
    emit(c >= 'A' && c <= 'Z' ? c + 32 : c);
  } else if (c == kCapitalIWithDot) {
    emit(U'i');
    emit(kCombiningDotAbove);
  } else {
    emit(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
  }
}

int combining_class(char32_t c) {
  return c < 0x300 ? 0 : utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class;
}

void append_nfd(char32_t c, std::u32string& out) {
  if (c < 0xC0) {  // nothing below U+00C0 decomposes canonically
    out.push_back(c);
    return;
  }
  std::array<utf8proc_int32_t, 32> buf;
  int boundclass = 0;
  utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf.data(),
                                               buf.size(), UTF8PROC_DECOMPOSE, &boundclass);
  PEFT_CHECK(n >= 0 && n <= static_cast<utf8proc_ssize_t>(buf.size()),
             "utf8proc_decompose_char(U+{:04X}) returned {}", static_cast<uint32_t>(c), n);
  out.append(buf.begin(), buf.begin() + n);
}

// Canonical ordering of NFD: every run of non-starters is stably sorted by combining class.
void canonical_order(char32_t* first, char32_t* last) {
  while (first != last) {
    if (combining_class(*first) == 0) {
      ++first;
      continue;
    }
    char32_t* run_end = first;
    while (run_end != last && combining_class(*run_end) != 0) ++run_end;
    if (run_end - first > 1)
      std::stable_sort(first, run_end, [](char32_t a, char32_t b) {
        return combining_class(a) < combining_class(b);
      });
    first = run_end;
  }
}

}  // namespace

void normalize_word(std::u32string_view word, bool lowercase, bool strip_accents,
                    std::u32string& out) {
  const std::size_t begin = out.size();
  if (!strip_accents) {
    for (char32_t c : word) {
      if (lowercase)
        lower_char(c, [&](char32_t l) { out.push_back(l); });
      else
        out.push_back(c);
    }
    return;
  }
  for (char32_t c : word) {
    if (lowercase)
      lower_char(c, [&](char32_t l) { append_nfd(l, out); });
    else
      append_nfd(c, out);
  }
  canonical_order(out.data() + begin, out.data() + out.size());
  out.erase(std::remove_if(out.begin() + static_cast<std::ptrdiff_t>(begin), out.end(),
                           bert_chars::is_nonspacing_mark),
            out.end());
}

}  // namespace peft::text
