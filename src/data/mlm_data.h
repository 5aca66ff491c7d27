#pragma once
// A masked-language-model corpus cut into fixed-length blocks, tokenised once.
//
// Block layout: every block is [CLS] + (block_size - 2) word pieces + [SEP], the pieces
// taken from the concatenation of the tokenised non-blank lines in order (a block may span
// lines and articles); the tail that does not fill a block is dropped. Unlike Hugging
// Face's run_mlm group_texts (which concatenates per-line "[CLS] … [SEP]" sequences, so the
// special tokens land mid-block), every block here looks like a fine-tuning input: [CLS]
// at position 0 and [SEP] last, no padding, so no attention mask is needed.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "text/wordpiece.h"

namespace peft::data {

struct MlmData {
  torch::Tensor blocks;  // [N, block_size] int64
  int64_t block_size = 0;
  int64_t dropped_tokens = 0;  // word pieces in the incomplete final block

  int64_t size() const { return blocks.defined() ? blocks.size(0) : 0; }
};

/// Tokenises the non-blank lines (whitespace-only lines are skipped, headings kept) and cuts
/// the stream into blocks. `max_blocks` > 0 stops after that many blocks (and tokenises
/// only about as many lines as they need). Needs [CLS] and [SEP]; block_size >= 3.
MlmData make_mlm_blocks(const std::vector<std::string>& lines,
                        const text::WordPieceTokenizer& tokenizer, int64_t block_size,
                        int64_t max_blocks = 0);

}  // namespace peft::data
