#include "data/mlm_data.h"

#include <algorithm>

#include "core/error.h"
#include "data/encode.h"
#include "data/text_file.h"

namespace peft::data {

MlmData make_mlm_blocks(const std::vector<std::string>& lines,
                        const text::WordPieceTokenizer& tokenizer, int64_t block_size,
                        int64_t max_blocks) {
  if (block_size < 3) throw_input("block_size must be at least 3 ([CLS] x [SEP]), got {}", block_size);
  if (tokenizer.cls_id() < 0 || tokenizer.sep_id() < 0)
    throw_input("the vocabulary needs [CLS] and [SEP] for MLM blocks");
  const int64_t body = block_size - 2;

  std::vector<std::string_view> text;  // the non-blank lines, in order
  text.reserve(lines.size());
  for (const std::string& l : lines)
    if (!trim(l).empty()) text.emplace_back(l);

  // Tokenise in chunks so that a capped corpus does not tokenise every line.
  std::vector<int32_t> stream;
  const int64_t want = max_blocks > 0 ? max_blocks * body : -1;
  const auto n = static_cast<int64_t>(text.size());
  constexpr int64_t kChunk = 4096;
  for (int64_t begin = 0; begin < n && (want < 0 || static_cast<int64_t>(stream.size()) < want);
       begin += kChunk) {
    const int64_t end = std::min(n, begin + kChunk);
    const auto ids = encode_texts(tokenizer, text, 0, false, begin, end);
    std::size_t total = stream.size();
    for (const auto& r : ids) total += r.size();
    stream.reserve(total);
    for (const auto& r : ids) stream.insert(stream.end(), r.begin(), r.end());
  }

  int64_t blocks = static_cast<int64_t>(stream.size()) / body;
  if (max_blocks > 0) blocks = std::min(blocks, max_blocks);
  MlmData d;
  d.block_size = block_size;
  d.dropped_tokens = max_blocks > 0 ? 0 : static_cast<int64_t>(stream.size()) - blocks * body;
  d.blocks = torch::empty({blocks, block_size}, torch::kInt64);
  int64_t* out = d.blocks.data_ptr<int64_t>();
  for (int64_t b = 0; b < blocks; ++b) {
    int64_t* row = out + b * block_size;
    row[0] = tokenizer.cls_id();
    std::copy_n(stream.begin() + b * body, body, row + 1);
    row[block_size - 1] = tokenizer.sep_id();
  }
  return d;
}

}  // namespace peft::data
