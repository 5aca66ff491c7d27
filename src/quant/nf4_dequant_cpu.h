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

/// The instruction set of the CPU dequantization loops, picked at run time from the CPU (the
/// binary is built for baseline x86-64): AVX-512 (vpermps over a 16-float table in one
/// register), AVX2 (two 8-float tables; pshufb byte planes for 16-bit outputs) or scalar. Every
/// path reads the same per-block table, so their outputs are bit-identical.
enum class Nf4CpuIsa { kAuto = -1, kScalar = 0, kAvx2 = 1, kAvx512 = 2 };
/// The path dequantize_nf4_cpu takes now.
Nf4CpuIsa nf4_cpu_isa();
/// The best path this CPU supports.
Nf4CpuIsa nf4_cpu_isa_available();
/// Tests and benchmarks: take `isa` (at most nf4_cpu_isa_available(), else an input error) until
/// called again with kAuto. Not thread-safe; not for use while a dequantization runs.
void force_nf4_cpu_isa(Nf4CpuIsa isa);
const char* nf4_cpu_isa_name(Nf4CpuIsa isa);

/// Dequantize a CPU NF4 weight into a new tensor of shape w.shape and type `dtype`
/// (float32, float16 or bfloat16): value = T(fp32(nf4[code] * scale[block])).
torch::Tensor dequantize_nf4_cpu(const NF4Weight& w, torch::ScalarType dtype);
/// The same into `out` (contiguous, CPU, w.numel() elements of float32, float16 or bfloat16).
void dequantize_nf4_cpu_into(const NF4Weight& w, const torch::Tensor& out);

}  // namespace peft::quant
