// WordPiece: the vocabulary readers (vocab.txt, tokenizer.json) on the input before the
// first NUL byte, then tokenization of the text after it (with that vocabulary when it
// loaded, else a small fixed one).
#include <cstring>

#include "fuzz_util.h"
#include "text/wordpiece.h"

namespace {

const peft::text::WordPieceTokenizer& fixed_tokenizer() {
  static const peft::text::WordPieceTokenizer tok({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the",
                                                   "a", "##s", "##ing", "good", "film", "!", ",", ".",
                                                   "un", "##believ", "##able", "é", "中"});
  return tok;
}

void exercise(const peft::text::WordPieceTokenizer& tok, std::string_view text) {
  peft::fuzz::refuse_ok([&] {
    const auto pieces = tok.tokenize(text);
    for (const auto& p : pieces)
      if (p.empty()) std::abort();
    const auto ids = tok.encode(text, 16);
    if (ids.size() > 16) std::abort();
    const auto batch = tok.encode_batch({std::string(text), "a good film"}, 24, peft::text::Padding::MaxLength);
    if (batch.ids.size() != static_cast<std::size_t>(batch.batch * batch.seq)) std::abort();
    for (int64_t id : batch.ids)
      if (id < 0 || static_cast<std::size_t>(id) >= tok.vocab_size()) std::abort();
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = all.find('\0');
  const std::string_view vocab = all.substr(0, nul);
  const std::string_view text = nul == std::string_view::npos ? std::string_view() : all.substr(nul + 1);

  const auto path = peft::fuzz::scratch() / "vocab";
  peft::fuzz::write_file(path, vocab);
  bool loaded = false;
  peft::fuzz::refuse_ok([&] {
    peft::text::TokenizerOptions opts;
    opts.lowercase = size % 2 == 0;
    opts.strip_accents = opts.lowercase;
    const auto tok = peft::text::WordPieceTokenizer::from_file(path.string(), opts);
    loaded = true;
    if (tok.vocab_size() == 0) std::abort();
    exercise(tok, text);
  });
  if (!loaded) exercise(fixed_tokenizer(), text.empty() ? vocab : text);
  return 0;
}
