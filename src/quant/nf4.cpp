// NF4 quantization with double quantization, following bitsandbytes' CUDA path step by step
// (functional.py quantize_4bit with compress_statistics=True; csrc/kernels.cu
// kQuantizeBlockwise for the 4-bit and the 8-bit stage). What cannot be bit-exact off the GPU:
//  - `1/absmax`: bitsandbytes builds with --use_fast_math, so the kernel's reciprocal is the
//    approximate rcp (<= 1 ulp); here it is the IEEE one. A code differs only when x/absmax lies
//    within ~1e-7 (relative) of one of the 15 thresholds.
//  - `absmax.mean()`: torch's CUDA mean is a parallel fp32 sum times fp32(1/N); here the sum is a
//    sequential fp64 sum rounded once (see detail::absmax_mean).
// Both only matter when quantizing; dequantizing a bitsandbytes checkpoint uses its stored
// offset, codes and maps and is exact.
#include "quant/nf4.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "core/error.h"
#include "quant/nf4_dequant_cpu.h"
#include "quant/nf4_tables.h"

#ifdef PEFT_WITH_CUDA
#include "nf4_kernels.h"
#endif
#ifdef PEFT_TORCH_HAS_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

namespace peft::quant {

const std::array<float, 16>& nf4_code() { return kNF4Code; }
const std::array<float, 256>& dynamic_map_signed() { return kDynamicMapSigned; }

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// bitsandbytes' block absmax: per thread fmaxf over |x| of its two values starting from
// -FLT_MAX, then a cub max over the threads that hold valid data. Subnormals read as zero
// (-ftz). In a partial block the counted threads include padding zeros, so 0 takes part.
float block_absmax(const float* x, int64_t valid, int64_t blocksize) {
  float m = -FLT_MAX;
  for (int64_t j = 0; j < valid; ++j) m = std::fmax(m, std::fabs(flush_subnormal(x[j])));
  if (valid < blocksize) m = std::fmax(m, 0.0f);
  return m;
}

// The kernel multiplies by the reciprocal (never divides); -ftz flushes a subnormal result.
float scaled(float x, float inv_absmax) { return flush_subnormal(flush_subnormal(x) * inv_absmax); }
float reciprocal(float absmax) { return flush_subnormal(1.0f / absmax); }

// kQuantizeBlockwise<T, 64, 2, 0, NF4>: one 4-bit code per value, pairs packed high nibble
// first. For an odd count the last byte's low nibble is the code of the padding zero: 7 (the
// code of 0.0), or 0 when the block's absmax is 0 (0 * inf is NaN, which takes code 0).
void quantize_nf4_block(const float* x, int64_t valid, int blocksize, float* absmax,
                        uint8_t* packed) {
  const float m = block_absmax(x, valid, blocksize);
  *absmax = m;
  const float r = reciprocal(m);
  const int64_t pairs = valid / 2;
  for (int64_t t = 0; t < pairs; ++t) {
    const uint8_t hi = nf4_nearest_code(scaled(x[2 * t], r));
    const uint8_t lo = nf4_nearest_code(scaled(x[2 * t + 1], r));
    packed[t] = static_cast<uint8_t>((hi << 4) | lo);
  }
  if (valid % 2 != 0) {
    const uint8_t hi = nf4_nearest_code(scaled(x[valid - 1], r));
    const uint8_t lo = nf4_nearest_code(scaled(0.0f, r));
    packed[pairs] = static_cast<uint8_t>((hi << 4) | lo);
  }
}

torch::Tensor cpu_f32(const float* data, int64_t n) {
  return torch::from_blob(const_cast<float*>(data), {n}, torch::kFloat32).clone();
}

void validate(const NF4Weight& w) {
  auto need = [](const torch::Tensor& t, const char* name, torch::ScalarType dt) {
    if (!t.defined()) throw_input("NF4Weight.{} is undefined", name);
    if (t.scalar_type() != dt)
      throw_input("NF4Weight.{} must be {}, got {}", name, c10::toString(dt),
                  c10::toString(t.scalar_type()));
  };
  need(w.packed, "packed", torch::kUInt8);
  need(w.absmax_q, "absmax_q", torch::kUInt8);
  need(w.nested_absmax, "nested_absmax", torch::kFloat32);
  need(w.nested_quant_map, "nested_quant_map", torch::kFloat32);
  if (w.blocksize <= 0 || w.blocksize % 2 != 0)
    throw_input("NF4Weight.blocksize must be even and positive, got {}", w.blocksize);
  if (w.nested_blocksize <= 0)
    throw_input("NF4Weight.nested_blocksize must be positive, got {}", w.nested_blocksize);
  const int64_t n = w.numel();
  if (w.packed.numel() != ceil_div(n, 2))
    throw_input("NF4Weight.packed has {} bytes, expected ceil({}/2)", w.packed.numel(), n);
  if (w.absmax_q.numel() != w.n_blocks())
    throw_input("NF4Weight.absmax_q has {} entries, expected {}", w.absmax_q.numel(), w.n_blocks());
  if (w.nested_absmax.numel() != ceil_div(w.n_blocks(), w.nested_blocksize))
    throw_input("NF4Weight.nested_absmax has {} entries, expected {}", w.nested_absmax.numel(),
                ceil_div(w.n_blocks(), w.nested_blocksize));
  if (w.nested_quant_map.numel() != 256)
    throw_input("NF4Weight.nested_quant_map has {} entries, expected 256",
                w.nested_quant_map.numel());
}

#ifdef PEFT_WITH_CUDA
torch::Tensor dequantize_cuda(const NF4Weight& w, torch::ScalarType dtype) {
  const torch::Device device = w.packed.device();
  for (const torch::Tensor* t : {&w.absmax_q, &w.nested_absmax, &w.nested_quant_map})
    if (t->device() != device)
      throw_input("NF4Weight tensors are on different devices ({} and {})", device.str(),
                  t->device().str());
  const torch::Tensor packed = w.packed.contiguous();
  const torch::Tensor absmax_q = w.absmax_q.contiguous();
  const torch::Tensor nested = w.nested_absmax.contiguous();
  const torch::Tensor map = w.nested_quant_map.contiguous();
  kernels::Nf4DeviceWeight d;
  d.packed = packed.data_ptr<uint8_t>();
  d.absmax_q = absmax_q.data_ptr<uint8_t>();
  d.nested_absmax = nested.data_ptr<float>();
  d.nested_map = map.data_ptr<float>();
  d.offset = w.offset;
  d.numel = w.numel();
  d.blocksize = w.blocksize;
  d.nested_blocksize = w.nested_blocksize;
  d.device = device.index() < 0 ? 0 : device.index();
  torch::Tensor out = torch::empty(w.shape, torch::TensorOptions().dtype(dtype).device(device));
  // Torch's current stream on the weight's device: ordered with the matmul that consumes the
  // result and with whatever stream the caller runs on (never the legacy default stream).
#ifdef PEFT_TORCH_HAS_CUDA
  void* stream = c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(d.device)).stream();
#else
  void* stream = nullptr;  // unreachable: a CPU-only LibTorch has no CUDA tensors
  throw std::logic_error("NF4 CUDA dequantization needs a CUDA build of LibTorch");
#endif
  switch (dtype) {
    case torch::kFloat32: kernels::nf4_dequantize_f32(d, out.data_ptr<float>(), stream); break;
    case torch::kFloat16:
      kernels::nf4_dequantize_f16(d, reinterpret_cast<uint16_t*>(out.data_ptr<at::Half>()), stream);
      break;
    case torch::kBFloat16:
      kernels::nf4_dequantize_bf16(d, reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>()),
                                   stream);
      break;
    default: throw_input("dequantize_nf4: unsupported output dtype {}", c10::toString(dtype));
  }
  return out;
}
#endif

}  // namespace

int64_t NF4Weight::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

int64_t NF4Weight::storage_bytes() const {
  auto bytes = [](const torch::Tensor& t) {
    return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : int64_t{0};
  };
  return bytes(packed) + bytes(absmax_q) + bytes(nested_absmax) + bytes(nested_quant_map) +
         bytes(quant_map) + static_cast<int64_t>(sizeof(offset));
}

NF4Weight NF4Weight::to(const torch::Device& device) const {
  NF4Weight w = *this;
  for (torch::Tensor* t : {&w.packed, &w.absmax_q, &w.nested_absmax, &w.nested_quant_map, &w.quant_map})
    if (t->defined()) *t = t->to(device);
  return w;
}

namespace detail {

std::uint8_t dynamic8_nearest_code(const float* code, float x) {
  int pivot = 127, upper_pivot = 255, lower_pivot = 0;
  float lower = -1.0f, upper = 1.0f;
  float val = code[pivot];
  for (int i = 64; i > 0; i >>= 1) {
    if (x > val) {
      lower_pivot = pivot;
      lower = val;
      pivot += i;
    } else {
      upper_pivot = pivot;
      upper = val;
      pivot -= i;
    }
    val = code[pivot];
  }
  if (upper_pivot == 255) upper = code[upper_pivot];
  if (lower_pivot == 0) lower = code[lower_pivot];
  if (x > val) {
    const float midpoint = (upper + val) * 0.5f;
    return static_cast<std::uint8_t>(x > midpoint ? upper_pivot : pivot);
  }
  const float midpoint = (lower + val) * 0.5f;
  return static_cast<std::uint8_t>(x < midpoint ? lower_pivot : pivot);
}

float absmax_mean(const float* absmax, int64_t n) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += absmax[i];
  const float factor = 1.0f / static_cast<float>(n);
  return static_cast<float>(sum) * factor;
}

torch::Tensor dequantize_absmax(const NF4Weight& w) {
  validate(w);
  const torch::Tensor q = w.absmax_q.to(torch::kCPU).contiguous();
  const torch::Tensor nested = w.nested_absmax.to(torch::kCPU).contiguous();
  const torch::Tensor map = w.nested_quant_map.to(torch::kCPU).contiguous();
  torch::Tensor out = torch::empty({w.n_blocks()}, torch::kFloat32);
  fill_block_scales(q.data_ptr<uint8_t>(), nested.data_ptr<float>(), map.data_ptr<float>(),
                    w.offset, w.n_blocks(), w.nested_blocksize, out.data_ptr<float>());
  return out;
}

}  // namespace detail

NF4Weight quantize_nf4(const torch::Tensor& weight) {
  if (!weight.defined()) throw_input("quantize_nf4: the weight is undefined");
  const auto st = weight.scalar_type();
  if (st != torch::kFloat32 && st != torch::kFloat16 && st != torch::kBFloat16)
    throw_input("quantize_nf4: weight dtype must be float32, float16 or bfloat16, got {}",
                c10::toString(st));
  const int64_t n = weight.numel();
  if (n == 0) throw_input("quantize_nf4: the weight is empty");

  // fp16/bf16 widen exactly to fp32, as the kernel's (float)vals[j].
  const torch::Tensor x = weight.detach().to(torch::kCPU).to(torch::kFloat32).contiguous();
  const float* xp = x.data_ptr<float>();
  constexpr int bs = kNF4BlockSize;
  const int64_t n_blocks = ceil_div(n, bs);

  NF4Weight w;
  w.shape = weight.sizes().vec();
  w.dtype = st;
  w.blocksize = bs;
  w.nested_blocksize = kNestedBlockSize;
  w.packed = torch::empty({ceil_div(n, 2), 1}, torch::kUInt8);
  std::vector<float> absmax(static_cast<size_t>(n_blocks));
  uint8_t* pp = w.packed.data_ptr<uint8_t>();
  at::parallel_for(0, n_blocks, 256, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t lo = b * bs;
      quantize_nf4_block(xp + lo, std::min<int64_t>(bs, n - lo), bs, &absmax[b], pp + lo / 2);
    }
  });

  // Double quantization (QLoRA §3, "Double Quantization"): offset = absmax.mean(), then
  // quantize_blockwise(absmax - offset, blocksize=256) with the signed dynamic map.
  w.offset = detail::absmax_mean(absmax.data(), n_blocks);
  std::vector<float> centred(absmax.size());
  for (size_t b = 0; b < absmax.size(); ++b) centred[b] = absmax[b] - w.offset;
  const int64_t nb2 = kNestedBlockSize;
  const int64_t n_nested = ceil_div(n_blocks, nb2);
  w.absmax_q = torch::empty({n_blocks}, torch::kUInt8);
  w.nested_absmax = torch::empty({n_nested}, torch::kFloat32);
  uint8_t* qp = w.absmax_q.data_ptr<uint8_t>();
  float* np2 = w.nested_absmax.data_ptr<float>();
  for (int64_t k = 0; k < n_nested; ++k) {
    const int64_t lo = k * nb2;
    const int64_t valid = std::min<int64_t>(nb2, n_blocks - lo);
    const float m = block_absmax(centred.data() + lo, valid, nb2);
    np2[k] = m;
    const float r = reciprocal(m);
    for (int64_t j = 0; j < valid; ++j)
      qp[lo + j] = detail::dynamic8_nearest_code(kDynamicMapSigned.data(), scaled(centred[lo + j], r));
  }
  w.nested_quant_map = cpu_f32(kDynamicMapSigned.data(), 256);
  w.quant_map = cpu_f32(kNF4Code.data(), 16);
  return weight.device().is_cpu() ? w : w.to(weight.device());
}

torch::Tensor dequantize_nf4(const NF4Weight& w, torch::ScalarType dtype) {
  validate(w);
  if (dtype != torch::kFloat32 && dtype != torch::kFloat16 && dtype != torch::kBFloat16)
    throw_input("dequantize_nf4: output dtype must be float32, float16 or bfloat16, got {}",
                c10::toString(dtype));
  const torch::Device device = w.packed.device();
  if (device.is_cuda()) {
#ifdef PEFT_WITH_CUDA
    return dequantize_cuda(w, dtype);
#else
    throw std::runtime_error(
        "peft-sweep was not compiled with CUDA: cannot dequantize an NF4 weight on " +
        device.str() + " (rebuild with -DPEFT_WITH_CUDA=ON)");
#endif
  }
  if (!device.is_cpu())
    throw_input("dequantize_nf4: unsupported device {}", device.str());
  return dequantize_nf4_cpu(w, dtype);
}

}  // namespace peft::quant
