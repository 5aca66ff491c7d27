#include "quant/nf4_dequant_cpu.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/torch.h>

#include <algorithm>

#include "core/error.h"
#include "quant/nf4_tables.h"

namespace peft::quant {
namespace {

// One parallel task covers this many values at least (at::parallel_for grain, in blocks).
constexpr int64_t kGrainValues = 1 << 15;

// Per block: a 16-entry table of the output type with the block scale folded in, then a tight
// loop of two table reads per packed byte. Writes into the preallocated `out`; no allocation.
template <typename T>
void dequantize_blocks(const std::uint8_t* packed, const std::uint8_t* q, const float* nested,
                       const float* map, float offset, int64_t numel, int blocksize,
                       int nested_blocksize, T* out) {
  const int64_t n_blocks = (numel + blocksize - 1) / blocksize;
  const int64_t grain = std::max<int64_t>(1, kGrainValues / blocksize);
  at::parallel_for(0, n_blocks, grain, [&](int64_t b0, int64_t b1) {
    T lut[16];
    for (int64_t b = b0; b < b1; ++b) {
      const float scale = nf4_block_scale(map, q, nested, offset, b, nested_blocksize);
      for (int c = 0; c < 16; ++c) lut[c] = static_cast<T>(kNF4Code[c] * scale);
      const int64_t lo = b * blocksize;
      const int64_t count = std::min<int64_t>(blocksize, numel - lo);
      const std::uint8_t* p = packed + lo / 2;  // blocksize is even
      T* o = out + lo;
      const int64_t pairs = count / 2;
      for (int64_t k = 0; k < pairs; ++k) {
        const std::uint8_t byte = p[k];
        o[2 * k] = lut[byte >> 4];
        o[2 * k + 1] = lut[byte & 0xF];
      }
      if (count % 2 != 0) o[count - 1] = lut[p[pairs] >> 4];  // low nibble: padding
    }
  });
}

}  // namespace

void fill_block_scales(const std::uint8_t* q, const float* nested, const float* map, float offset,
                       int64_t n_blocks, int nested_blocksize, float* out) {
  for (int64_t b = 0; b < n_blocks; ++b)
    out[b] = nf4_block_scale(map, q, nested, offset, b, nested_blocksize);
}

torch::Tensor dequantize_nf4_cpu(const NF4Weight& w, torch::ScalarType dtype) {
  const torch::Tensor packed = w.packed.contiguous();
  const torch::Tensor q = w.absmax_q.contiguous();
  const torch::Tensor nested = w.nested_absmax.contiguous();
  const torch::Tensor map = w.nested_quant_map.contiguous();
  torch::Tensor out = torch::empty(w.shape, torch::TensorOptions().dtype(dtype));
  const auto* pp = packed.data_ptr<std::uint8_t>();
  const auto* qp = q.data_ptr<std::uint8_t>();
  const float* np = nested.data_ptr<float>();
  const float* mp = map.data_ptr<float>();
  const int64_t n = w.numel();
  switch (dtype) {
    case torch::kFloat32:
      dequantize_blocks(pp, qp, np, mp, w.offset, n, w.blocksize, w.nested_blocksize,
                        out.data_ptr<float>());
      break;
    case torch::kFloat16:
      dequantize_blocks(pp, qp, np, mp, w.offset, n, w.blocksize, w.nested_blocksize,
                        out.data_ptr<at::Half>());
      break;
    case torch::kBFloat16:
      dequantize_blocks(pp, qp, np, mp, w.offset, n, w.blocksize, w.nested_blocksize,
                        out.data_ptr<at::BFloat16>());
      break;
    default:
      throw_input("dequantize_nf4: unsupported output dtype {}", c10::toString(dtype));
  }
  return out;
}

}  // namespace peft::quant
