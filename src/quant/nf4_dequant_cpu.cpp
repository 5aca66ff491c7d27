#include "quant/nf4_dequant_cpu.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "core/error.h"
#include "quant/nf4_tables.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PEFT_NF4_X86 1
#include <immintrin.h>
#endif

namespace peft::quant {
namespace {

// One parallel task covers this many values at least (at::parallel_for grain, in blocks).
constexpr int64_t kGrainValues = 1 << 15;

Nf4CpuIsa g_forced_isa = Nf4CpuIsa::kAuto;

Nf4CpuIsa detect_isa() {
#ifdef PEFT_NF4_X86
  static const Nf4CpuIsa best = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) return Nf4CpuIsa::kAvx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c")) return Nf4CpuIsa::kAvx2;
    return Nf4CpuIsa::kScalar;
  }();
  return best;
#else
  return Nf4CpuIsa::kScalar;
#endif
}

// The per-block table: the 16 code values times the block's scale, rounded once to fp32, then
// once to T. Every path below reads its outputs from this table, so all are bit-identical.
template <typename T>
void block_table(float scale, T* lut) {
  for (int c = 0; c < 16; ++c) lut[c] = static_cast<T>(kNF4Code[c] * scale);
}

// Scalar: two table reads per packed byte (high nibble first). `pairs` bytes, `odd` = one more
// value in the high nibble of the next byte (the low one is padding).
template <typename T>
inline void scalar_pairs(const std::uint8_t* p, int64_t pairs, bool odd, const T* lut, T* o) {
  for (int64_t k = 0; k < pairs; ++k) {
    const std::uint8_t byte = p[k];
    o[2 * k] = lut[byte >> 4];
    o[2 * k + 1] = lut[byte & 0xF];
  }
  if (odd) o[2 * pairs] = lut[p[pairs] >> 4];
}

#ifdef PEFT_NF4_X86
// fp32, AVX-512: the block's table lives in one register; 8 bytes -> 16 indices (each byte
// twice, shifted by 4 then 0) -> one vpermps gathers 16 outputs. vpermps reads the low 4 bits of
// each index, so the low nibble needs no mask.
__attribute__((target("avx512f,avx512bw"))) void pairs_f32_avx512(const std::uint8_t* p, int64_t pairs, bool odd,
                                                                    float scale, float* o) {
  // Built in the register: a table stored as scalars and loaded as one vector would stall on
  // store forwarding once per block.
  const __m512 table = _mm512_mul_ps(_mm512_loadu_ps(kNF4Code.data()), _mm512_set1_ps(scale));
  const __m512i shifts = _mm512_set_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4);
  int64_t k = 0;
  for (; k + 8 <= pairs; k += 8) {
    __m128i b;
    std::memcpy(&b, p + k, 8);  // the upper 8 bytes are not used
    const __m128i twice = _mm_unpacklo_epi8(b, b);
    const __m512i idx = _mm512_srlv_epi32(_mm512_cvtepu8_epi32(twice), shifts);
    _mm512_storeu_ps(o + 2 * k, _mm512_permutexvar_ps(idx, table));
  }
  if (k < pairs || odd) {
    alignas(64) float lut[16];
    _mm512_store_ps(lut, table);
    scalar_pairs(p + k, pairs - k, odd, lut, o + 2 * k);
  }
}

// fp32, AVX2: the table is two 8-float registers; vpermps on each, bit 3 of the index picks.
__attribute__((target("avx2"))) void pairs_f32_avx2(const std::uint8_t* p, int64_t pairs, bool odd,
                                                     float scale, float* o) {
  const __m256 lo_table = _mm256_mul_ps(_mm256_loadu_ps(kNF4Code.data()), _mm256_set1_ps(scale));
  const __m256 hi_table = _mm256_mul_ps(_mm256_loadu_ps(kNF4Code.data() + 8), _mm256_set1_ps(scale));
  const __m256i shifts = _mm256_set_epi32(0, 4, 0, 4, 0, 4, 0, 4);
  const __m256i nibble = _mm256_set1_epi32(0xF);
  int64_t k = 0;
  for (; k + 4 <= pairs; k += 4) {
    int32_t four;
    std::memcpy(&four, p + k, 4);
    const __m128i b = _mm_cvtsi32_si128(four);
    const __m128i twice = _mm_unpacklo_epi8(b, b);
    const __m256i idx = _mm256_and_si256(_mm256_srlv_epi32(_mm256_cvtepu8_epi32(twice), shifts), nibble);
    const __m256 lo = _mm256_permutevar8x32_ps(lo_table, idx), hi = _mm256_permutevar8x32_ps(hi_table, idx);
    const __m256 upper = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28));  // bit 3 -> sign bit
    _mm256_storeu_ps(o + 2 * k, _mm256_blendv_ps(lo, hi, upper));
  }
  if (k < pairs || odd) {
    alignas(32) float lut[16];
    _mm256_store_ps(lut, lo_table);
    _mm256_store_ps(lut + 8, hi_table);
    scalar_pairs(p + k, pairs - k, odd, lut, o + 2 * k);
  }
}

// fp32 -> bf16 bits in the low half of each uint32, as c10::BFloat16(float).
__attribute__((target("avx2"))) inline __m256i round_to_bf16_avx2(__m256 v) {
  const __m256i bits = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF))), 16);
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  return _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7FC0), nan);
}

// The block's table as 16 uint16 of T (one per 128-bit lane: entries 0..7 | 8..15), converted
// from the fp32 table as c10 does: round to nearest even (F16C for fp16; the bit trick of
// c10::BFloat16 for bf16, NaN -> 0x7FC0).
template <typename T>
__attribute__((target("avx2,f16c"))) inline __m256i table_u16_avx2(float scale) {
  const __m256 lo = _mm256_mul_ps(_mm256_loadu_ps(kNF4Code.data()), _mm256_set1_ps(scale));
  const __m256 hi = _mm256_mul_ps(_mm256_loadu_ps(kNF4Code.data() + 8), _mm256_set1_ps(scale));
  if constexpr (std::is_same_v<T, at::Half>) {
    return _mm256_set_m128i(_mm256_cvtps_ph(hi, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                            _mm256_cvtps_ph(lo, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  } else {
    static_assert(std::is_same_v<T, at::BFloat16>);
    // 8 + 8 uint32 -> 16 uint16 (packus works per lane: lane 0 = lo[0..3] hi[0..3]), then
    // restore the order 0..15 with a 64-bit permute.
    const __m256i packed = _mm256_packus_epi32(round_to_bf16_avx2(lo), round_to_bf16_avx2(hi));
    return _mm256_permute4x64_epi64(packed, 0xD8);
  }
}

// 16-bit outputs (bf16, fp16), AVX-512: the table's 16 entries in one register, vpermw over
// 32 indices (16 bytes, each twice, shifted by 4 then 0, masked to 4 bits) per store.
template <typename T>
__attribute__((target("avx512f,avx512bw,avx2,f16c"))) void pairs_u16_avx512(const std::uint8_t* p, int64_t pairs,
                                                                             bool odd, float scale, std::uint16_t* o) {
  const __m512i table = _mm512_castsi256_si512(table_u16_avx2<T>(scale));
  const __m512i shifts = _mm512_set1_epi32(0x00000004);  // per uint16: 4, 0, 4, 0, ...
  const __m512i nibble = _mm512_set1_epi16(0xF);
  int64_t k = 0;
  for (; k + 16 <= pairs; k += 16) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k));
    const __m256i twice = _mm256_set_m128i(_mm_unpackhi_epi8(b, b), _mm_unpacklo_epi8(b, b));
    const __m512i idx = _mm512_and_si512(_mm512_srlv_epi16(_mm512_cvtepu8_epi16(twice), shifts), nibble);
    _mm512_storeu_si512(o + 2 * k, _mm512_permutexvar_epi16(idx, table));
  }
  if (k < pairs || odd) {
    alignas(32) std::uint16_t lut[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lut), _mm512_castsi512_si256(table));
    scalar_pairs(p + k, pairs - k, odd, lut, o + 2 * k);
  }
}

// 16-bit outputs (bf16, fp16), AVX2: the table's low and high bytes are two pshufb tables.
// 16 bytes -> 32 nibble indices in output order -> one pshufb per byte plane -> interleave.
// Takes the scale, not the table: a __m256i must not cross into code built without AVX (the
// calling convention differs).
template <typename T>
__attribute__((target("avx2,f16c"))) void pairs_u16_avx2(const std::uint8_t* p, int64_t pairs, bool odd,
                                                          float scale, std::uint16_t* o) {
  const __m256i table = table_u16_avx2<T>(scale);
  // Split the table into byte planes: per lane [low bytes of 8 entries | high bytes of 8].
  const __m256i split = _mm256_shuffle_epi8(
      table, _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5,
                              7, 9, 11, 13, 15));
  const __m128i lane0 = _mm256_castsi256_si128(split), lane1 = _mm256_extracti128_si256(split, 1);
  const __m256i lo_table = _mm256_broadcastsi128_si256(_mm_unpacklo_epi64(lane0, lane1));
  const __m256i hi_table = _mm256_broadcastsi128_si256(_mm_unpackhi_epi64(lane0, lane1));
  const __m128i nibble = _mm_set1_epi8(0xF);
  int64_t k = 0;
  for (; k + 16 <= pairs; k += 16) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k));
    const __m128i high = _mm_and_si128(_mm_srli_epi16(b, 4), nibble), low = _mm_and_si128(b, nibble);
    // indices of outputs 0..15 in lane 0, 16..31 in lane 1
    const __m256i idx = _mm256_set_m128i(_mm_unpackhi_epi8(high, low), _mm_unpacklo_epi8(high, low));
    const __m256i lo = _mm256_shuffle_epi8(lo_table, idx), hi = _mm256_shuffle_epi8(hi_table, idx);
    // per lane: bytes interleaved into 16 uint16; lane 0 holds outputs 0..7 | 16..23 after
    // unpacklo, so put the halves back in order with one cross-lane permute.
    const __m256i a = _mm256_unpacklo_epi8(lo, hi), c = _mm256_unpackhi_epi8(lo, hi);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 2 * k), _mm256_permute2x128_si256(a, c, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 2 * k + 16), _mm256_permute2x128_si256(a, c, 0x31));
  }
  if (k < pairs || odd) {
    alignas(32) std::uint16_t lut[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lut), table);
    scalar_pairs(p + k, pairs - k, odd, lut, o + 2 * k);
  }
}
#endif

template <typename T>
void dequantize_blocks(const std::uint8_t* packed, const std::uint8_t* q, const float* nested,
                       const float* map, float offset, int64_t numel, int blocksize,
                       int nested_blocksize, Nf4CpuIsa isa, T* out) {
  const int64_t n_blocks = (numel + blocksize - 1) / blocksize;
  const int64_t grain = std::max<int64_t>(1, kGrainValues / blocksize);
  at::parallel_for(0, n_blocks, grain, [&](int64_t b0, int64_t b1) {
    T lut[16];
    // The scales of up to kChunk blocks first, one nested group at a time (no division per
    // block), then the codes.
    constexpr int64_t kChunk = 256;
    float scales[kChunk];
    for (int64_t c0 = b0; c0 < b1; c0 += kChunk) {
      const int64_t c1 = std::min(b1, c0 + kChunk);
      for (int64_t b = c0; b < c1;) {
        const int64_t group = b / nested_blocksize;
        const int64_t end = std::min(c1, (group + 1) * nested_blocksize);
        const float nested_scale = nested[group];
        for (; b < end; ++b) {
          volatile float product = map[q[b]] * nested_scale;  // rounded before the sum, as nf4_block_scale
          scales[b - c0] = product + offset;
        }
      }
      for (int64_t b = c0; b < c1; ++b) {
        const float scale = scales[b - c0];
        const int64_t lo = b * blocksize;
        const int64_t count = std::min<int64_t>(blocksize, numel - lo);
        const std::uint8_t* p = packed + lo / 2;  // blocksize is even
        T* o = out + lo;
        const int64_t pairs = count / 2;
        const bool odd = count % 2 != 0;
#ifdef PEFT_NF4_X86
        if (isa != Nf4CpuIsa::kScalar) {
          if constexpr (std::is_same_v<T, float>) {
            if (isa == Nf4CpuIsa::kAvx512) pairs_f32_avx512(p, pairs, odd, scale, o);
            else pairs_f32_avx2(p, pairs, odd, scale, o);
          } else {
            auto* o16 = reinterpret_cast<std::uint16_t*>(o);
            if (isa == Nf4CpuIsa::kAvx512) pairs_u16_avx512<T>(p, pairs, odd, scale, o16);
            else pairs_u16_avx2<T>(p, pairs, odd, scale, o16);
          }
          continue;
        }
#endif
        block_table(scale, lut);
        scalar_pairs(p, pairs, odd, lut, o);
      }
    }
  });
}

}  // namespace

Nf4CpuIsa nf4_cpu_isa() { return g_forced_isa == Nf4CpuIsa::kAuto ? detect_isa() : g_forced_isa; }

Nf4CpuIsa nf4_cpu_isa_available() { return detect_isa(); }

void force_nf4_cpu_isa(Nf4CpuIsa isa) {
  if (isa != Nf4CpuIsa::kAuto && static_cast<int>(isa) > static_cast<int>(detect_isa()))
    throw_input("NF4 CPU dequantization: {} is not available on this CPU (best: {})", nf4_cpu_isa_name(isa),
                nf4_cpu_isa_name(detect_isa()));
  g_forced_isa = isa;
}

const char* nf4_cpu_isa_name(Nf4CpuIsa isa) {
  switch (isa) {
    case Nf4CpuIsa::kAuto: return "auto";
    case Nf4CpuIsa::kScalar: return "scalar";
    case Nf4CpuIsa::kAvx2: return "avx2";
    case Nf4CpuIsa::kAvx512: return "avx512";
  }
  return "?";
}

void fill_block_scales(const std::uint8_t* q, const float* nested, const float* map, float offset,
                       int64_t n_blocks, int nested_blocksize, float* out) {
  for (int64_t b = 0; b < n_blocks; ++b)
    out[b] = nf4_block_scale(map, q, nested, offset, b, nested_blocksize);
}

void dequantize_nf4_cpu_into(const NF4Weight& w, const torch::Tensor& out) {
  if (!out.defined() || !out.device().is_cpu() || !out.is_contiguous() || out.numel() != w.numel())
    throw_input("dequantize_nf4: the output must be a contiguous CPU tensor of {} elements", w.numel());
  const torch::Tensor packed = w.packed.contiguous();
  const torch::Tensor q = w.absmax_q.contiguous();
  const torch::Tensor nested = w.nested_absmax.contiguous();
  const torch::Tensor map = w.nested_quant_map.contiguous();
  const auto* pp = packed.data_ptr<std::uint8_t>();
  const auto* qp = q.data_ptr<std::uint8_t>();
  const float* np = nested.data_ptr<float>();
  const float* mp = map.data_ptr<float>();
  const int64_t n = w.numel();
  const Nf4CpuIsa isa = nf4_cpu_isa();
  switch (out.scalar_type()) {
    case torch::kFloat32:
      dequantize_blocks(pp, qp, np, mp, w.offset, n, w.blocksize, w.nested_blocksize, isa,
                        out.data_ptr<float>());
      break;
    case torch::kFloat16:
      dequantize_blocks(pp, qp, np, mp, w.offset, n, w.blocksize, w.nested_blocksize, isa,
                        out.data_ptr<at::Half>());
      break;
    case torch::kBFloat16:
      dequantize_blocks(pp, qp, np, mp, w.offset, n, w.blocksize, w.nested_blocksize, isa,
                        out.data_ptr<at::BFloat16>());
      break;
    default:
      throw_input("dequantize_nf4: unsupported output dtype {}", c10::toString(out.scalar_type()));
  }
}

torch::Tensor dequantize_nf4_cpu(const NF4Weight& w, torch::ScalarType dtype) {
  torch::Tensor out = torch::empty(w.shape, torch::TensorOptions().dtype(dtype));
  dequantize_nf4_cpu_into(w, out);
  return out;
}

}  // namespace peft::quant
