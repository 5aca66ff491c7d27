#include "data/classification_data.h"

#include <algorithm>

#include "core/error.h"
#include "data/encode.h"

namespace peft::data {

ClassificationData tokenize_classification(const TextSplit& split,
                                           const text::WordPieceTokenizer& tokenizer,
                                           int max_length) {
  if (max_length < 3) throw_input("max_length must be at least 3 ([CLS] x [SEP]), got {}", max_length);
  if (tokenizer.pad_id() < 0) throw_input("the vocabulary has no [PAD] token, needed for padding");
  PEFT_CHECK(split.labels.size() == split.texts.size(), "{} labels for {} texts", split.labels.size(),
             split.texts.size());
  PEFT_CHECK(split.contrast.empty() || split.contrast.size() == split.texts.size(),
             "{} contrast flags for {} texts", split.contrast.size(), split.texts.size());

  const std::vector<std::vector<int32_t>> rows = encode_texts(tokenizer, split.texts, max_length, true);
  const auto n = static_cast<int64_t>(rows.size());
  std::size_t longest = 1;
  for (const auto& r : rows) longest = std::max(longest, r.size());
  const auto L = static_cast<int64_t>(longest);

  ClassificationData d;
  d.pad_id = tokenizer.pad_id();
  d.ids = torch::full({n, L}, d.pad_id, torch::kInt64);
  d.mask = torch::zeros({n, L}, torch::kInt64);
  d.lengths = torch::empty({n}, torch::kInt64);
  int64_t* ids = d.ids.data_ptr<int64_t>();
  int64_t* mask = d.mask.data_ptr<int64_t>();
  int64_t* lengths = d.lengths.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const auto& r = rows[static_cast<std::size_t>(i)];
    std::copy(r.begin(), r.end(), ids + i * L);
    std::fill_n(mask + i * L, r.size(), int64_t{1});
    lengths[i] = static_cast<int64_t>(r.size());
  }
  d.labels = torch::from_blob(const_cast<int64_t*>(split.labels.data()), {n}, torch::kInt64).clone();
  d.contrast = split.contrast;
  return d;
}

}  // namespace peft::data
