#pragma once
// Tokenising many texts at once, in parallel over the texts (at::parallel_for): the data
// sets are tokenised once, up front, never per training step.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "text/wordpiece.h"

namespace peft::data {

/// ids of texts[begin, end): WordPieceTokenizer::encode(text, max_length, add_special_tokens)
/// for each. `end` = -1 → texts.size().
std::vector<std::vector<int32_t>> encode_texts(const text::WordPieceTokenizer& tokenizer,
                                               const std::vector<std::string>& texts,
                                               int max_length, bool add_special_tokens,
                                               int64_t begin = 0, int64_t end = -1);
std::vector<std::vector<int32_t>> encode_texts(const text::WordPieceTokenizer& tokenizer,
                                               const std::vector<std::string_view>& texts,
                                               int max_length, bool add_special_tokens,
                                               int64_t begin = 0, int64_t end = -1);

}  // namespace peft::data
