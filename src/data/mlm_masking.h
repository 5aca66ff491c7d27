#pragma once
// BERT's masked-language-model corruption (Devlin et al., 2019, §3.1), as Hugging Face's
// DataCollatorForLanguageModeling: each non-special token is selected with probability
// 15%; a selected token becomes [MASK] with probability 80%, a random token with 10% and
// stays itself with 10%. labels = the original id at selected positions, -100 elsewhere.
// Vectorised: three random tensors per call, no loop over tokens.
//
// Randomness comes from an at::Generator the caller owns: the trainer keeps one per trial
// so masks change every step, while evaluation masks the whole evaluation set once with a
// fixed seed (mask_tokens(blocks, opts, seed)), so every trial, batch size and dp sees the
// same masks and perplexities are comparable.
#include <cstdint>
#include <vector>

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include "text/wordpiece.h"

namespace peft::data {

inline constexpr int64_t kIgnoreIndex = -100;  // cross_entropy's default ignore_index

struct MaskingOptions {
  double probability = 0.15;     // share of eligible tokens selected
  double mask_fraction = 0.8;    // of the selected: → [MASK]
  double random_fraction = 0.1;  // of the selected: → random token; the rest stay
  int64_t mask_id = -1;
  // Random replacements are drawn uniformly from [random_low, random_high), the ordinary
  // (non-special) tokens. A token id below random_low, or in special_ids, is never selected.
  int64_t random_low = 0, random_high = 0;
  std::vector<int64_t> special_ids;

  /// For a vocabulary whose leading run of bracketed entries ([PAD], [unused0], [UNK],
  /// [CLS], [SEP], [MASK], [unusedN] …) is special: BERT's vocab.txt → random_low 999;
  /// synthetic_vocab() → 5. special_ids = [PAD] [UNK] [CLS] [SEP] [MASK] where present.
  static MaskingOptions for_tokenizer(const text::WordPieceTokenizer& tokenizer);
  /// Throws InputError on out-of-range fractions or ids.
  void validate() const;
};

struct MaskedTokens {
  torch::Tensor input_ids;  // same shape as the input, int64
  torch::Tensor labels;     // int64, kIgnoreIndex where not selected
};

/// A CPU generator seeded with `seed` (PyTorch's mt19937: same stream on every platform).
at::Generator make_generator(uint64_t seed);

/// Masks `ids` (int64, any shape, CPU) drawing from `generator`.
MaskedTokens mask_tokens(const torch::Tensor& ids, const MaskingOptions& opts, at::Generator& generator);
/// Same with a fresh generator seeded with `seed` (evaluation).
MaskedTokens mask_tokens(const torch::Tensor& ids, const MaskingOptions& opts, uint64_t seed);

/// The seed of one training shard's masks: fresh masks every step, reproducible from the trial
/// seed, the epoch, the step within the epoch and the shard's offset in the global batch.
/// bench/sweep_draws.py (mlm_mask_seed) reproduces it for the reference runs; both pin values.
constexpr uint64_t train_mask_seed(uint64_t seed, int64_t epoch, int64_t index, int64_t offset) {
  return seed * 0x9E3779B97F4A7C15ULL ^ (static_cast<uint64_t>(epoch) << 32) ^ static_cast<uint64_t>(index) * 1315423911ULL ^
         static_cast<uint64_t>(offset);
}

}  // namespace peft::data
