#pragma once
// What the sweep validation and the trial runner must agree on about the `tiny` preset.
#include <cstdint>

#include "core/trial.h"

namespace peft {

/// Positions of the tiny preset: 128 with the synthetic vocabulary (its sentences are short),
/// 512 (BERT's) with a real vocabulary (model.vocab), so that real data may use max_length or
/// block_size up to 512.
inline int64_t tiny_max_positions(const ModelSettings& m) { return m.vocab.empty() ? 128 : 512; }

}  // namespace peft
