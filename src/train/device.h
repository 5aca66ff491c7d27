#pragma once
// Device choice and device-memory probes. On GPUs the peak memory is LibTorch's CUDA caching
// allocator peak (needs a CUDA build of LibTorch); on CPU the process RSS high-water mark.
#include <string>

#include <torch/types.h>

namespace peft::train {

/// "auto" → cuda when LibTorch sees a GPU, else cpu; "cuda" without one (or without a CUDA
/// build) → peft::InputError saying so.
torch::Device resolve_device(const std::string& setting, int local_rank = 0);
void reset_peak_memory(const torch::Device& device);
int64_t peak_memory_bytes(const torch::Device& device);

}  // namespace peft::train
