#pragma once
// WordPiece tokenizer for uncased BERT vocabularies, matching Hugging Face's BertTokenizer
// (BasicTokenizer + WordpieceTokenizer): text cleaning (drop NUL, U+FFFD and control
// characters; whitespace → space), CJK characters split out, lower-casing, accent stripping
// via Unicode NFD (Mn marks removed), punctuation split, greedy longest-match-first with
// "##" continuations, [UNK] for words over max_input_chars_per_word characters.
// Special-token names ([CLS], [SEP], [PAD], [MASK], [UNK]) written in the text map to their
// ids, as in HF (split_special_tokens=False). No LibTorch.
//
// Where the Rust tokenizer (tokenizer.json via `tokenizers`) and the Python BertTokenizer
// disagree, this follows the Python one; wordpiece.cpp lists the known cases.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace peft::text {

struct TokenizerOptions {
  bool lowercase = true;
  bool strip_accents = true;           // HF: follows lowercase unless set
  bool tokenize_chinese_chars = true;
  int max_input_chars_per_word = 100;
  bool split_special_tokens = false;   // HF: true = "[SEP]" in the text is plain text
};

/// Ids and attention mask of a padded batch, row-major [batch, seq].
struct EncodedBatch {
  std::vector<int64_t> ids;
  std::vector<int64_t> mask;
  int64_t batch = 0;
  int64_t seq = 0;
};

enum class Padding { Longest, MaxLength };

class WordPieceTokenizer {
 public:
  /// vocab.txt (one token per line, id = line number) or tokenizer.json (model.vocab);
  /// picked by content. Throws peft::InputError naming the file (and line) on bad input.
  /// [UNK] must be in the vocabulary; the other special tokens may be absent (id -1),
  /// and then encode()/encode_batch() throw when they need them. Only model.vocab is read
  /// from tokenizer.json; `opts` decides lower-casing and the rest.
  static WordPieceTokenizer from_file(const std::string& path, TokenizerOptions opts = {});
  WordPieceTokenizer(std::vector<std::string> vocab, TokenizerOptions opts = {});

  /// Word pieces of `text`, no special tokens. Throws peft::InputError on invalid UTF-8.
  std::vector<std::string> tokenize(std::string_view text) const;
  /// [CLS] pieces [SEP]; with max_length > 0 the pieces are truncated so the whole
  /// sequence has at most max_length ids (as HF truncation=True). No padding.
  std::vector<int32_t> encode(std::string_view text, int max_length = 0, bool add_special_tokens = true) const;
  /// Encodes and pads with [PAD] (mask 0) to the longest row or to max_length.
  EncodedBatch encode_batch(const std::vector<std::string>& texts, int max_length,
                            Padding padding = Padding::Longest) const;

  int32_t token_to_id(std::string_view token) const;  // unk_id() when absent
  const std::string& id_to_token(int32_t id) const;   // throws std::out_of_range
  std::size_t vocab_size() const { return vocab_.size(); }
  int32_t pad_id() const { return pad_id_; }
  int32_t unk_id() const { return unk_id_; }
  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  int32_t mask_id() const { return mask_id_; }
  const TokenizerOptions& options() const { return opts_; }

 private:
  struct Workspace;  // reusable buffers of one encoding call (wordpiece.cpp)
  /// Appends the ids of `text`'s word pieces (no [CLS]/[SEP]) to `out`.
  void append_ids(std::string_view text, std::vector<int32_t>& out, Workspace& ws) const;
  void append_word(Workspace& ws, std::vector<int32_t>& out) const;
  void append_piece(std::string_view piece, Workspace& ws, std::vector<int32_t>& out) const;
  std::vector<int32_t> encode_with(std::string_view text, int max_length, bool add_special_tokens,
                                   Workspace& ws) const;

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int32_t> index_;
  TokenizerOptions opts_;
  int32_t pad_id_ = 0, unk_id_ = 0, cls_id_ = 0, sep_id_ = 0, mask_id_ = 0;
  std::size_t max_token_bytes_ = 0;  // longest vocabulary entry: bounds the match search
};

}  // namespace peft::text
