// WordPiece encoding, following transformers' BertTokenizer (tokenization_bert.py) step by
// step: special-token split → _clean_text → _tokenize_chinese_chars → whitespace split →
// lower + _run_strip_accents → _run_split_on_punc → WordpieceTokenizer (greedy
// longest-match-first). It works in one pass over the bytes: a "word" (whitespace token) is
// collected as cleaned code points, then lower-cased, accent-stripped and split on punctuation
// when it ends. transformers lower-cases the whole text first, one character at a time; doing
// it per word after cleaning gives the same result, as cleaning never touches letters.
//
// Where the Rust tokenizer (tokenizer.json, `tokenizers`) and the Python BertTokenizer differ,
// this follows Python. Checked over every code point (as "xA<c>B <c>") against tokenizers
// 0.23.2 and against a port of the Python algorithm; every difference is one of these:
//  - Unassigned code points (Cn): Python's _is_control drops them; Rust keeps them ([UNK]).
//  - U+2B820..U+2B91F (CJK Extension E): Python's _is_chinese_char range starts at 0x2B820,
//    Rust's at 0x2B920, so Rust does not split them out.
//  - A few hundred code points whose category differs between Unicode versions (e.g. U+061D
//    is Po, so punctuation, here and not in Rust's older tables). Categories here are
//    utf8proc's (Unicode 15.0, as Python 3.12); other Pythons differ on the same code points.
// Rust strips accents before lower-casing and Python after; no code point differs by it.
// On real data (SST-2 train+dev, 500 IMDB reviews, all WikiText-2 splits) all ids agree.
#include "text/wordpiece.h"

#include <utf8proc.h>

#include <array>
#include <stdexcept>

#include "core/error.h"
#include "text/bert_chars.h"
#include "text/bert_normalize.h"

namespace peft::text {

namespace bc = bert_chars;

struct WordPieceTokenizer::Workspace {
  std::u32string word;  // code points of the current whitespace token, cleaned
  bool word_ascii = true;
  std::u32string norm;  // the word lower-cased and accent-stripped
  std::string piece;    // UTF-8 of one punctuation-split piece
  std::string probe;    // candidate vocabulary entry ("##" + substring)

  Workspace() {
    word.reserve(128);
    norm.reserve(256);
    piece.reserve(512);
    probe.reserve(512);
  }
};

namespace {

constexpr std::array<std::string_view, 5> kSpecialNames = {"[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                                           "[MASK]"};

bool is_continuation_byte(char b) { return (static_cast<unsigned char>(b) & 0xC0) == 0x80; }

void append_utf8(char32_t c, std::string& out) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
    return;
  }
  utf8proc_uint8_t buf[4];
  utf8proc_ssize_t n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
}

int32_t find_special(const std::unordered_map<std::string, int32_t>& index, std::string_view name) {
  auto it = index.find(std::string(name));
  return it == index.end() ? -1 : it->second;
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> vocab, TokenizerOptions opts)
    : vocab_(std::move(vocab)), opts_(opts) {
  if (vocab_.empty()) throw_input("WordPiece vocabulary is empty");
  if (opts_.max_input_chars_per_word <= 0)
    throw_input("max_input_chars_per_word must be positive, got {}",
                opts_.max_input_chars_per_word);
  index_.reserve(vocab_.size());
  for (std::size_t i = 0; i < vocab_.size(); ++i) {
    auto [it, inserted] = index_.emplace(vocab_[i], static_cast<int32_t>(i));
    if (!inserted)
      throw_input("WordPiece vocabulary: token '{}' (id {}) duplicates id {}", vocab_[i], i,
                  it->second);
    max_token_bytes_ = std::max(max_token_bytes_, vocab_[i].size());
  }
  unk_id_ = find_special(index_, "[UNK]");
  if (unk_id_ < 0) throw_input("WordPiece vocabulary has no [UNK] token");
  pad_id_ = find_special(index_, "[PAD]");
  cls_id_ = find_special(index_, "[CLS]");
  sep_id_ = find_special(index_, "[SEP]");
  mask_id_ = find_special(index_, "[MASK]");
}

int32_t WordPieceTokenizer::token_to_id(std::string_view token) const {
  auto it = index_.find(std::string(token));
  return it == index_.end() ? unk_id_ : it->second;
}

const std::string& WordPieceTokenizer::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= vocab_.size())
    throw std::out_of_range("token id " + std::to_string(id) + " outside the vocabulary of " +
                            std::to_string(vocab_.size()));
  return vocab_[static_cast<std::size_t>(id)];
}

void WordPieceTokenizer::append_ids(std::string_view text, std::vector<int32_t>& out,
                                    Workspace& ws) const {
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  const std::size_t n = text.size();
  ws.word.clear();
  ws.word_ascii = true;
  std::size_t i = 0;
  while (i < n) {
    const unsigned char b = bytes[i];
    if (b < 0x80) {
      // HF splits the special-token names out of the raw text before anything else
      // (added tokens with normalized=false), so "[SEP]" in the text is id 102.
      if (b == '[' && !opts_.split_special_tokens) {
        std::string_view rest = text.substr(i);
        bool matched = false;
        for (std::string_view name : kSpecialNames) {
          if (rest.starts_with(name)) {
            append_word(ws, out);
            out.push_back(token_to_id(name));
            i += name.size();
            matched = true;
            break;
          }
        }
        if (matched) continue;
      }
      ++i;
      switch (bc::kAsciiClasses[b]) {
        case bc::kAsciiRemoved:
          break;
        case bc::kAsciiSpace:
          append_word(ws, out);
          break;
        default:
          ws.word.push_back(b);
      }
      continue;
    }
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t len = utf8proc_iterate(bytes + i, static_cast<utf8proc_ssize_t>(n - i), &cp);
    if (len <= 0) throw_input("text is not valid UTF-8: bad byte 0x{:02X} at offset {}", b, i);
    i += static_cast<std::size_t>(len);
    const char32_t c = static_cast<char32_t>(cp);
    if (bc::is_removed(c)) continue;
    if (bc::is_whitespace(c)) {
      append_word(ws, out);
    } else if (opts_.tokenize_chinese_chars && bc::is_chinese_char(c)) {
      append_word(ws, out);  // a CJK character is a word of its own
      ws.word.push_back(c);
      ws.word_ascii = false;
      append_word(ws, out);
    } else {
      ws.word.push_back(c);
      ws.word_ascii = false;
    }
  }
  append_word(ws, out);
}

void WordPieceTokenizer::append_word(Workspace& ws, std::vector<int32_t>& out) const {
  if (ws.word.empty()) return;
  ws.norm.clear();
  if (ws.word_ascii) {
    for (char32_t c : ws.word)
      ws.norm.push_back(opts_.lowercase && c >= 'A' && c <= 'Z' ? c + 32 : c);
  } else {
    normalize_word(ws.word, opts_.lowercase, opts_.strip_accents, ws.norm);
  }
  ws.word.clear();
  ws.word_ascii = true;

  ws.piece.clear();
  for (char32_t c : ws.norm) {
    if (bc::is_punctuation(c)) {
      if (!ws.piece.empty()) append_piece(ws.piece, ws, out);
      ws.piece.clear();
      append_utf8(c, ws.piece);
      append_piece(ws.piece, ws, out);
      ws.piece.clear();
    } else {
      append_utf8(c, ws.piece);
    }
  }
  if (!ws.piece.empty()) append_piece(ws.piece, ws, out);
}

void WordPieceTokenizer::append_piece(std::string_view piece, Workspace& ws,
                                      std::vector<int32_t>& out) const {
  std::size_t chars = 0;
  for (char b : piece) chars += !is_continuation_byte(b);
  if (chars > static_cast<std::size_t>(opts_.max_input_chars_per_word)) {
    out.push_back(unk_id_);
    return;
  }
  const std::size_t first_out = out.size();
  const std::size_t len = piece.size();
  std::size_t start = 0;
  while (start < len) {
    const std::size_t prefix = start > 0 ? 2 : 0;
    // No vocabulary entry is longer than max_token_bytes_, so longer candidates are skipped
    // without probing; this keeps long words linear instead of quadratic.
    std::size_t end = len;
    if (max_token_bytes_ < prefix + 1) {
      end = start;
    } else if (end - start > max_token_bytes_ - prefix) {
      end = start + (max_token_bytes_ - prefix);
      while (end > start && is_continuation_byte(piece[end])) --end;
    }
    int32_t id = -1;
    while (end > start) {
      ws.probe.assign("##", prefix);
      ws.probe.append(piece.data() + start, end - start);
      auto it = index_.find(ws.probe);
      if (it != index_.end()) {
        id = it->second;
        break;
      }
      --end;
      while (end > start && is_continuation_byte(piece[end])) --end;
    }
    if (id < 0) {  // some suffix matches nothing: the whole piece is unknown
      out.resize(first_out);
      out.push_back(unk_id_);
      return;
    }
    out.push_back(id);
    start = end;
  }
}

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view text) const {
  Workspace ws;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  append_ids(text, ids, ws);
  std::vector<std::string> pieces;
  pieces.reserve(ids.size());
  for (int32_t id : ids) pieces.push_back(vocab_[static_cast<std::size_t>(id)]);
  return pieces;
}

std::vector<int32_t> WordPieceTokenizer::encode(std::string_view text, int max_length,
                                                bool add_special_tokens) const {
  Workspace ws;
  return encode_with(text, max_length, add_special_tokens, ws);
}

std::vector<int32_t> WordPieceTokenizer::encode_with(std::string_view text, int max_length,
                                                     bool add_special_tokens, Workspace& ws) const {
  if (max_length < 0)
    throw_input("max_length must be >= 0 (0 = no truncation), got {}", max_length);
  const int specials = add_special_tokens ? 2 : 0;
  if (max_length > 0 && max_length < specials)
    throw_input("max_length {} leaves no room for [CLS] and [SEP]", max_length);
  if (add_special_tokens && (cls_id_ < 0 || sep_id_ < 0))
    throw_input("the vocabulary has no {} token, needed by add_special_tokens",
                cls_id_ < 0 ? "[CLS]" : "[SEP]");
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids.push_back(cls_id_);
  append_ids(text, ids, ws);
  if (max_length > 0 && ids.size() + specials / 2 > static_cast<std::size_t>(max_length))
    ids.resize(static_cast<std::size_t>(max_length - specials / 2));
  if (add_special_tokens) ids.push_back(sep_id_);
  return ids;
}

EncodedBatch WordPieceTokenizer::encode_batch(const std::vector<std::string>& texts, int max_length,
                                              Padding padding) const {
  if (padding == Padding::MaxLength && max_length <= 0)
    throw_input("Padding::MaxLength needs max_length > 0, got {}", max_length);
  if (pad_id_ < 0) throw_input("the vocabulary has no [PAD] token, needed for padding");
  Workspace ws;
  std::vector<std::vector<int32_t>> rows;
  rows.reserve(texts.size());
  std::size_t longest = 0;
  for (const std::string& text : texts) {
    rows.push_back(encode_with(text, max_length, true, ws));
    longest = std::max(longest, rows.back().size());
  }
  EncodedBatch batch;
  batch.batch = static_cast<int64_t>(rows.size());
  batch.seq = padding == Padding::MaxLength ? max_length : static_cast<int64_t>(longest);
  const std::size_t seq = static_cast<std::size_t>(batch.seq);
  batch.ids.assign(rows.size() * seq, pad_id_);
  batch.mask.assign(rows.size() * seq, 0);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    for (std::size_t t = 0; t < rows[r].size(); ++t) {
      batch.ids[r * seq + t] = rows[r][t];
      batch.mask[r * seq + t] = 1;
    }
  }
  return batch;
}

}  // namespace peft::text
