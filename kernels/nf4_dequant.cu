// NF4 dequantization with the double dequantization of the block scales fused in: one thread
// per packed byte (two outputs), grid-stride loop. Compared against the CPU reference in
// tests/quant/test_nf4.cpp (bit-identical for fp32, fp16 and bf16 outputs).
#include "nf4_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "quant/nf4_tables.h"

namespace peft::kernels {
namespace {

struct CodeBook {
  float v[16];
};

template <typename T>
struct Out;
template <>
struct Out<float> {
  using Pair = float2;
  static __device__ __forceinline__ float one(float x) { return x; }
  static __device__ __forceinline__ float2 two(float a, float b) { return make_float2(a, b); }
};
template <>
struct Out<__half> {
  using Pair = __half2;
  static __device__ __forceinline__ __half one(float x) { return __float2half_rn(x); }
  static __device__ __forceinline__ __half2 two(float a, float b) { return __floats2half2_rn(a, b); }
};
template <>
struct Out<__nv_bfloat16> {
  using Pair = __nv_bfloat162;
  static __device__ __forceinline__ __nv_bfloat16 one(float x) { return __float2bfloat16_rn(x); }
  static __device__ __forceinline__ __nv_bfloat162 two(float a, float b) {
    return __floats2bfloat162_rn(a, b);
  }
};

template <typename T>
__global__ void nf4_dequant_kernel(Nf4DeviceWeight w, CodeBook book, T* __restrict__ out) {
  __shared__ float code[16];
  if (threadIdx.x < 16) code[threadIdx.x] = book.v[threadIdx.x];
  __syncthreads();

  const std::int64_t n_bytes = (w.numel + 1) / 2;
  const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
  auto* pairs = reinterpret_cast<typename Out<T>::Pair*>(out);
  for (std::int64_t j = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       j < n_bytes; j += stride) {
    const std::int64_t i = 2 * j;  // blocksize is even: both values share a block
    const std::int64_t b = i / w.blocksize;
    // __fmul_rn / __fadd_rn are never contracted into an FMA: two roundings, as bitsandbytes.
    const float scale =
        __fadd_rn(__fmul_rn(__ldg(&w.nested_map[__ldg(&w.absmax_q[b])]),
                            __ldg(&w.nested_absmax[b / w.nested_blocksize])),
                  w.offset);
    const unsigned byte = __ldg(&w.packed[j]);
    const float hi = __fmul_rn(code[byte >> 4], scale);
    if (i + 1 < w.numel) {
      pairs[j] = Out<T>::two(hi, __fmul_rn(code[byte & 0xF], scale));
    } else {
      out[i] = Out<T>::one(hi);  // odd numel: the low nibble is padding
    }
  }
}

void check(cudaError_t err, const char* what, const char* file, int line) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + what +
                             " failed: " + cudaGetErrorString(err));
}
#define PEFT_CUDA_CHECK(expr) check((expr), #expr, __FILE__, __LINE__)

template <typename T>
void launch(const Nf4DeviceWeight& w, T* out, void* stream) {
  if (w.numel <= 0) return;
  if (w.blocksize <= 0 || w.blocksize % 2 != 0 || w.nested_blocksize <= 0)
    throw std::invalid_argument("nf4 dequantize: blocksize must be even and positive");
  int previous = 0;
  PEFT_CUDA_CHECK(cudaGetDevice(&previous));
  if (previous != w.device) PEFT_CUDA_CHECK(cudaSetDevice(w.device));
  CodeBook book;
  for (int c = 0; c < 16; ++c) book.v[c] = peft::quant::kNF4Code[c];
  constexpr int kThreads = 256;
  const std::int64_t n_bytes = (w.numel + 1) / 2;
  const std::int64_t blocks = std::min<std::int64_t>((n_bytes + kThreads - 1) / kThreads, 1 << 20);
  nf4_dequant_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0,
                          static_cast<cudaStream_t>(stream)>>>(w, book, out);
  const cudaError_t err = cudaGetLastError();
  if (previous != w.device) cudaSetDevice(previous);
  check(err, "nf4_dequant_kernel launch", __FILE__, __LINE__);
}

// Explicit instantiations for the three output types.
template void launch<float>(const Nf4DeviceWeight&, float*, void*);
template void launch<__half>(const Nf4DeviceWeight&, __half*, void*);
template void launch<__nv_bfloat16>(const Nf4DeviceWeight&, __nv_bfloat16*, void*);

}  // namespace

void nf4_dequantize_f32(const Nf4DeviceWeight& w, float* out, void* stream) {
  launch<float>(w, out, stream);
}
void nf4_dequantize_f16(const Nf4DeviceWeight& w, std::uint16_t* out, void* stream) {
  launch<__half>(w, reinterpret_cast<__half*>(out), stream);
}
void nf4_dequantize_bf16(const Nf4DeviceWeight& w, std::uint16_t* out, void* stream) {
  launch<__nv_bfloat16>(w, reinterpret_cast<__nv_bfloat16*>(out), stream);
}

}  // namespace peft::kernels
