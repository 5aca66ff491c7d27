#pragma once
// The tiny preset's pretrained base: an MLM-pretrained tiny encoder on the synthetic corpus,
// made once and cached on disk for every later trial and process.
#include <cstdint>
#include <string>

#include "core/trial.h"

namespace peft::train {

/// The tiny preset's base, MLM-pretrained on the synthetic corpus and cached in
/// `settings.cache_dir` (one writer, others wait on a file lock). Returns the folder.
std::string ensure_pretrained_tiny(const ModelSettings& settings, uint64_t seed);

}  // namespace peft::train
