#pragma once
// CUDA NF4 dequantization (kernels/nf4_dequant.cu), declared in plain C++: no torch and no
// CUDA types, so the dispatch in src/quant/nf4.cpp can include it from a .cpp file.
// The code book lives in src/quant/nf4_tables.h, shared with the CPU reference.
#include <cstdint>

namespace peft::kernels {

/// Device pointers of one NF4 weight with double-quantized block scales (bitsandbytes layout).
struct Nf4DeviceWeight {
  const std::uint8_t* packed = nullptr;   // ceil(numel/2) bytes, first element in the high nibble
  const std::uint8_t* absmax_q = nullptr; // n_blocks indices into nested_map
  const float* nested_absmax = nullptr;   // ceil(n_blocks / nested_blocksize) scales
  const float* nested_map = nullptr;      // 256-entry code of the 8-bit absmax quantization
  float offset = 0.f;                     // mean of the fp32 absmax, added back
  std::int64_t numel = 0;
  int blocksize = 64;                     // even
  int nested_blocksize = 256;
  int device = 0;                         // CUDA ordinal the pointers live on
};

/// out[i] = nf4[code_i] * (nested_map[absmax_q[b]] * nested_absmax[b / nested_blocksize] + offset)
/// with b = i / blocksize: the product and the sum are each rounded in fp32 (bitsandbytes'
/// dequantize_blockwise, then `absmax += offset`), the final product once to the output type.
/// `out` must be aligned to two elements (fresh allocations are). `stream` is the cudaStream_t to launch
/// on: src/quant/nf4.cpp passes torch's current stream (never the legacy default stream,
/// which a nullptr would mean). Asynchronous; throws
/// std::runtime_error when the launch fails.
void nf4_dequantize_f32(const Nf4DeviceWeight& w, float* out, void* stream);
/// As above, writing IEEE binary16 bits.
void nf4_dequantize_f16(const Nf4DeviceWeight& w, std::uint16_t* out, void* stream);
/// As above, writing bfloat16 bits.
void nf4_dequantize_bf16(const Nf4DeviceWeight& w, std::uint16_t* out, void* stream);

}  // namespace peft::kernels
