#include "data/encode.h"

#include <ATen/Parallel.h>

namespace peft::data {

namespace {

template <typename Text>
std::vector<std::vector<int32_t>> encode_range(const text::WordPieceTokenizer& tokenizer,
                                               const std::vector<Text>& texts,
                                               int max_length, bool add_special_tokens,
                                               int64_t begin, int64_t end) {
  if (end < 0) end = static_cast<int64_t>(texts.size());
  std::vector<std::vector<int32_t>> ids(static_cast<std::size_t>(std::max<int64_t>(end - begin, 0)));
  // The tokenizer is const and keeps its buffers per call, so texts can be split over threads.
  at::parallel_for(begin, end, /*grain_size=*/256, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      ids[static_cast<std::size_t>(i - begin)] =
          tokenizer.encode(texts[static_cast<std::size_t>(i)], max_length, add_special_tokens);
  });
  return ids;
}

}  // namespace

std::vector<std::vector<int32_t>> encode_texts(const text::WordPieceTokenizer& tokenizer,
                                               const std::vector<std::string>& texts,
                                               int max_length, bool add_special_tokens,
                                               int64_t begin, int64_t end) {
  return encode_range(tokenizer, texts, max_length, add_special_tokens, begin, end);
}

std::vector<std::vector<int32_t>> encode_texts(const text::WordPieceTokenizer& tokenizer,
                                               const std::vector<std::string_view>& texts,
                                               int max_length, bool add_special_tokens,
                                               int64_t begin, int64_t end) {
  return encode_range(tokenizer, texts, max_length, add_special_tokens, begin, end);
}

}  // namespace peft::data
