#pragma once
// A classification split tokenised once into contiguous tensors. A training step only
// gathers rows (data/batch.h); it never tokenises.
#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "data/text_split.h"
#include "text/wordpiece.h"

namespace peft::data {

struct ClassificationData {
  torch::Tensor ids;              // [N, L] int64, [CLS] … [SEP] then pad_id; L = longest row
  torch::Tensor mask;             // [N, L] int64, 1 on tokens, 0 on padding
  torch::Tensor labels;           // [N] int64 (-1 = unlabelled)
  torch::Tensor lengths;          // [N] int64, tokens per row including [CLS] and [SEP]
  std::vector<uint8_t> contrast;  // [N] or empty: synthetic sentiment's contrast-clause flag
  int64_t pad_id = 0;

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  int64_t max_length() const { return ids.defined() ? ids.size(1) : 0; }
};

/// Tokenises every text with [CLS]/[SEP] and truncation to `max_length` (> 0; HF
/// truncation=True), pads to the longest row. Needs [PAD], [CLS], [SEP] in the vocabulary.
ClassificationData tokenize_classification(const TextSplit& split,
                                           const text::WordPieceTokenizer& tokenizer,
                                           int max_length);

}  // namespace peft::data
