// The CPU dropout kernel (model/dropout.h): keep/drop bits from a counter-based SplitMix64, in
// the same pass as the product, in parallel; element i's bit depends only on (seed, i):
// elements 2j and 2j+1 take the low and the high 32 bits of mix(seed + j·γ).
//
// Each task works in chunks: one loop hashes a chunk's counters into a small buffer, a second
// applies the buffer's 32-bit draws to the elements. Both vectorise; the chunk loops are
// compiled for AVX-512 (DQ: 64-bit multiplies) and AVX2 too and picked at run time, as the NF4
// kernels are (src/quant/nf4_dequant_cpu.cpp).
#include <algorithm>
#include <type_traits>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "core/error.h"
#include "model/dropout.h"

namespace peft::model {
namespace {

constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;  // SplitMix64's increment (the golden ratio)
constexpr int64_t kChunkPairs = 256;               // 2 KiB of draws, in L1 beside the data

using u32_alias = uint32_t __attribute__((may_alias));

/// SplitMix64's output function: a 64-bit counter → 64 well-mixed bits (two elements' draws).
__attribute__((always_inline)) inline uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

template <typename T>
using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

/// Pairs [pb, pe) of the n elements: x → y.
template <typename T>
__attribute__((always_inline)) inline void apply_pairs(const T* __restrict x, T* __restrict y, int64_t n, int64_t pb, int64_t pe,
                                                       uint32_t threshold, acc_t<T> keep, uint64_t seed) {
  alignas(64) uint64_t draws[kChunkPairs];
  for (int64_t j0 = pb; j0 < pe; j0 += kChunkPairs) {
    const int64_t m = std::min<int64_t>(kChunkPairs, pe - j0);
    const uint64_t base = seed + static_cast<uint64_t>(j0) * kGamma;
    for (int64_t k = 0; k < m; ++k) draws[k] = mix(base + static_cast<uint64_t>(k) * kGamma);
    // Little-endian: element 2j reads the low half of draws[j], element 2j+1 the high half.
    const u32_alias* u = reinterpret_cast<const u32_alias*>(draws);
    const int64_t e0 = 2 * j0, ne = std::min<int64_t>(2 * m, n - e0);
    const T* xs = x + e0;
    T* ys = y + e0;
    for (int64_t k = 0; k < ne; ++k) ys[k] = static_cast<T>(static_cast<acc_t<T>>(xs[k]) * (u[k] >= threshold ? keep : acc_t<T>(0)));
  }
}

template <typename T>
void pairs_default(const T* x, T* y, int64_t n, int64_t pb, int64_t pe, uint32_t th, acc_t<T> keep, uint64_t seed) {
  apply_pairs(x, y, n, pb, pe, th, keep, seed);
}
template <typename T>
__attribute__((target("avx2"))) void pairs_avx2(const T* x, T* y, int64_t n, int64_t pb, int64_t pe, uint32_t th, acc_t<T> keep,
                                                 uint64_t seed) {
  apply_pairs(x, y, n, pb, pe, th, keep, seed);
}
template <typename T>
__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"))) void pairs_avx512(const T* x, T* y, int64_t n, int64_t pb, int64_t pe,
                                                                                uint32_t th, acc_t<T> keep, uint64_t seed) {
  apply_pairs(x, y, n, pb, pe, th, keep, seed);
}

enum class Isa { kDefault, kAvx2, kAvx512 };

Isa cpu_isa() {
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
      return Isa::kAvx512;
    if (__builtin_cpu_supports("avx2")) return Isa::kAvx2;
    return Isa::kDefault;
  }();
  return isa;
}

template <typename T>
void apply(const T* x, T* y, int64_t n, uint32_t threshold, double scale, uint64_t seed) {
  const auto keep = static_cast<acc_t<T>>(scale);
  const Isa isa = cpu_isa();
  // 16 Ki pairs a task: tens of microseconds each, far above the scheduling cost.
  at::parallel_for(0, (n + 1) / 2, 16384, [&](int64_t pb, int64_t pe) {
    switch (isa) {
      case Isa::kAvx512: pairs_avx512(x, y, n, pb, pe, threshold, keep, seed); break;
      case Isa::kAvx2: pairs_avx2(x, y, n, pb, pe, threshold, keep, seed); break;
      case Isa::kDefault: pairs_default(x, y, n, pb, pe, threshold, keep, seed); break;
    }
  });
}

}  // namespace

void dropout_mask_apply_cpu(const torch::Tensor& x, torch::Tensor& out, double p, uint64_t seed) {
  PEFT_CHECK(x.device().is_cpu() && out.device().is_cpu(), "dropout_mask_apply_cpu takes CPU tensors");
  PEFT_CHECK(x.is_contiguous() && out.is_contiguous() && out.sizes() == x.sizes() && out.scalar_type() == x.scalar_type(),
             "dropout_mask_apply_cpu: contiguous input and output of one shape and dtype");
  PEFT_CHECK(p >= 0.0 && p < 1.0, "dropout probability {} outside [0, 1)", p);
  // P(keep) = P(u >= threshold) = 1 - threshold / 2^32 for a uniform 32-bit u: p to 2^-32.
  const auto threshold = static_cast<uint32_t>(std::min(p * 4294967296.0 + 0.5, 4294967295.0));
  const double scale = 1.0 / (1.0 - p);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "peft_dropout_cpu", [&] {
    apply<scalar_t>(x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), x.numel(), threshold, scale, seed);
  });
}

}  // namespace peft::model
