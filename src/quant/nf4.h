#pragma once
// NF4 4-bit NormalFloat quantization with double quantization (QLoRA, Dettmers et al. 2023),
// bit-identical to bitsandbytes quantize_4bit(quant_type="nf4", blocksize=64,
// compress_statistics=True): blocks of 64 over the row-major flattened weight, fp32 absmax per
// block, nearest code of the 16-value NF4 code book, two codes per byte (first element in the
// high nibble); the absmax vector is double-quantized: mean subtracted, 8-bit blockwise
// (block 256) on bitsandbytes' signed dynamic map, fp32 absmax per 256-block.
// CPU reference here; CUDA dequantization in kernels/ (dispatched by device). Code books and the
// nearest-code rule: nf4_tables.h.
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

namespace peft::quant {

inline constexpr int kNF4BlockSize = 64;
inline constexpr int kNestedBlockSize = 256;

/// The 16 NF4 code values, ascending (bitsandbytes' table).
const std::array<float, 16>& nf4_code();
/// bitsandbytes create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): 256 values.
const std::array<float, 256>& dynamic_map_signed();

/// A weight in NF4 with double-quantized block scales.
struct NF4Weight {
  torch::Tensor packed;            // uint8 [ceil(numel/2), 1]  (bitsandbytes' shape)
  torch::Tensor absmax_q;          // uint8 [n_blocks]            (quantized block absmax)
  torch::Tensor nested_absmax;     // float32 [ceil(n_blocks/256)]
  torch::Tensor nested_quant_map;  // float32 [256] (dynamic signed map)
  torch::Tensor quant_map;         // float32 [16]  (NF4 code book)
  float offset = 0.f;              // mean of the fp32 absmax, added back after dequantization
  std::vector<int64_t> shape;      // original weight shape
  torch::ScalarType dtype = torch::kFloat32;  // original / compute dtype
  int blocksize = kNF4BlockSize;
  int nested_blocksize = kNestedBlockSize;    // block of the 8-bit absmax quantization
  int64_t numel() const;
  int64_t n_blocks() const { return (numel() + blocksize - 1) / blocksize; }
  /// Bytes held by the quantized representation (packed codes + scales + maps).
  int64_t storage_bytes() const;
  NF4Weight to(const torch::Device& device) const;
};

NF4Weight quantize_nf4(const torch::Tensor& weight);
/// Dequantize to `dtype` on the weight's device (CPU reference or CUDA kernel).
torch::Tensor dequantize_nf4(const NF4Weight& w, torch::ScalarType dtype = torch::kFloat32);
/// y = x · dequant(W)ᵀ + b, dequantizing on the fly in forward and backward; W gets no grad.
torch::Tensor nf4_linear(const torch::Tensor& x, const NF4Weight& w, const torch::Tensor& bias);

/// bitsandbytes state-dict entries for `<prefix>.weight` (Linear4bit with compress_statistics):
/// weight, weight.absmax, weight.quant_map, weight.nested_absmax, weight.nested_quant_map,
/// weight.quant_state.bitsandbytes__nf4 (JSON packed into uint8).
std::map<std::string, torch::Tensor> to_bnb_state_dict(const NF4Weight& w, const std::string& prefix);
/// Inverse of to_bnb_state_dict; throws peft::InputError naming the missing/bad entry.
NF4Weight from_bnb_state_dict(const std::map<std::string, torch::Tensor>& sd, const std::string& prefix);

/// The steps of quantize_nf4 / dequantize_nf4 on their own, for tests and tools.
namespace detail {
/// bitsandbytes dQuantize<0>: nearest entry of a sorted 256-entry code (binary search, then the
/// midpoint rule of csrc/kernels.cu, ties to the entry nearer the middle of the search).
std::uint8_t dynamic8_nearest_code(const float* code256, float x);
/// offset = absmax.mean() as torch's CUDA MeanOps computes it: sum * fp32(1/N); the sum is a
/// sequential fp64 sum rounded once (CUDA's parallel fp32 sum may differ in the last bit).
float absmax_mean(const float* absmax, int64_t n);
/// The fp32 block absmax that dequantization uses: nested_quant_map[absmax_q] *
/// nested_absmax[block / nested_blocksize] + offset, rounded after each step (as bitsandbytes'
/// dequantize_blockwise followed by `absmax += offset`). CPU tensor [n_blocks].
torch::Tensor dequantize_absmax(const NF4Weight& w);
/// Python's repr() of a double, as json.dumps writes it (e.g. "0.1", "1.0", "1e-05").
std::string python_float_repr(double v);
}  // namespace detail

}  // namespace peft::quant
