#pragma once
// CPU NF4 dequantization: the reference the CUDA kernel is compared against, and the hot path
// of QLoRA on CPU (every forward and backward dequantizes each frozen weight).
#include <cstdint>

#include <torch/types.h>

#include "quant/nf4.h"

namespace peft::quant {

/// The fp32 scale of NF4 block b: map[q[b]] * nested[b / nested_blocksize] + offset, with the
/// product and the sum rounded separately (no FMA), as bitsandbytes' dequantize_blockwise
/// followed by `absmax += offset`.
inline float nf4_block_scale(const float* map, const std::uint8_t* q, const float* nested,
                             float offset, int64_t b, int nested_blocksize) {
  volatile float product = map[q[b]] * nested[b / nested_blocksize];  // keeps the rounding
  return product + offset;
}

void fill_block_scales(const std::uint8_t* q, const float* nested, const float* map, float offset,
                       int64_t n_blocks, int nested_blocksize, float* out);

/// Dequantize a CPU NF4 weight into a new tensor of shape w.shape and type `dtype`
/// (float32, float16 or bfloat16): value = T(fp32(nf4[code] * scale[block])).
torch::Tensor dequantize_nf4_cpu(const NF4Weight& w, torch::ScalarType dtype);

}  // namespace peft::quant
