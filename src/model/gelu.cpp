// GELU's CPU kernels (model/gelu.h). Each element: z = x/√2, e = exp(-z²); erf(|z|) = 1 - t·P(t)·e
// with t = 1/(1 + p|z|) (Abramowitz & Stegun 7.1.26); Φ(x) = ½(1 + sign(z)·erf(|z|)); φ(x) =
// e/√(2π). The loops are branch-free scalar code that GCC vectorises (-O3), compiled three
// times (default, AVX2 + FMA, AVX-512) and picked at run time, as the dropout and NF4 kernels.
#include "model/gelu.h"

#include <bit>
#include <cstdint>

#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include "core/error.h"
#include "model/cpu_kernels.h"

namespace peft::model {
namespace {

/// e^a for a ≤ 0 (a below -87 gives e^-87): n = round(a/ln2), r = a - n·ln2 in two parts
/// (Cody & Waite; Cephes' constants), e^r by Taylor to r⁷ (|r| ≤ ln2/2: error below 6e-9
/// relative), times 2ⁿ built in the exponent bits.
__attribute__((always_inline)) inline float exp_nonpositive(float a) {
  a = a < -87.0f ? -87.0f : a;
  const float n = (a * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest (1.5·2²³)
  float r = a - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const auto bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  return p * std::bit_cast<float>(bits);
}

struct Phi {
  float cdf, pdf;  // Φ(x), φ(x)
};

__attribute__((always_inline)) inline Phi phi(float x) {
  constexpr float kSqrtHalf = 0.707106781186547524f, kInvSqrt2Pi = 0.398942280401432678f;
  const float z = x * kSqrtHalf;
  const float az = z < 0.0f ? -z : z;
  const float e = exp_nonpositive(-z * z);
  const float t = 1.0f / (1.0f + 0.3275911f * az);
  float poly = 1.061405429f;
  poly = poly * t - 1.453152027f;
  poly = poly * t + 1.421413741f;
  poly = poly * t - 0.284496736f;
  poly = poly * t + 0.254829592f;
  const float erf_abs = 1.0f - poly * t * e;
  const float erf = z < 0.0f ? -erf_abs : erf_abs;
  return {0.5f * (1.0f + erf), e * kInvSqrt2Pi};
}

__attribute__((always_inline)) inline void fwd_loop(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * phi(x[i]).cdf;
}
__attribute__((always_inline)) inline void bwd_loop(const float* __restrict g, const float* __restrict x, float* __restrict gx,
                                                     int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const Phi p = phi(x[i]);
    gx[i] = g[i] * (p.cdf + x[i] * p.pdf);
  }
}

void fwd_default(const float* x, float* y, int64_t n) { fwd_loop(x, y, n); }
__attribute__((target("avx2,fma"))) void fwd_avx2(const float* x, float* y, int64_t n) { fwd_loop(x, y, n); }
__attribute__((target("avx512f,avx512dq,avx512vl"))) void fwd_avx512(const float* x, float* y, int64_t n) { fwd_loop(x, y, n); }
void bwd_default(const float* g, const float* x, float* gx, int64_t n) { bwd_loop(g, x, gx, n); }
__attribute__((target("avx2,fma"))) void bwd_avx2(const float* g, const float* x, float* gx, int64_t n) { bwd_loop(g, x, gx, n); }
__attribute__((target("avx512f,avx512dq,avx512vl"))) void bwd_avx512(const float* g, const float* x, float* gx, int64_t n) {
  bwd_loop(g, x, gx, n);
}

enum class Isa { kDefault, kAvx2, kAvx512 };

Isa cpu_isa() {
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
      return Isa::kAvx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
    return Isa::kDefault;
  }();
  return isa;
}

constexpr int64_t kGrain = 16384;  // elements a task: ~10 µs, far above the scheduling cost

void check(const torch::Tensor& a, const torch::Tensor& b, const char* what) {
  PEFT_CHECK(a.device().is_cpu() && b.device().is_cpu() && a.scalar_type() == torch::kFloat32 && b.scalar_type() == torch::kFloat32 &&
                 a.is_contiguous() && b.is_contiguous() && a.sizes() == b.sizes(),
             "{}: contiguous fp32 CPU tensors of one shape", what);
}

class CpuGelu : public torch::autograd::Function<CpuGelu> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    const torch::Tensor xc = x.contiguous();
    ctx->save_for_backward({xc});
    torch::Tensor y = torch::empty_like(xc);
    gelu_forward_cpu(xc, y);
    return y;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list grads) {
    const torch::Tensor x = ctx->get_saved_variables()[0];
    const torch::Tensor g = grads[0].contiguous();
    torch::Tensor gx = torch::empty_like(x);
    gelu_backward_cpu(g, x, gx);
    return {gx};
  }
};

}  // namespace

void gelu_forward_cpu(const torch::Tensor& x, torch::Tensor& y) {
  check(x, y, "gelu_forward_cpu");
  const float* px = x.data_ptr<float>();
  float* py = y.data_ptr<float>();
  const Isa isa = cpu_isa();
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) {
    switch (isa) {
      case Isa::kAvx512: fwd_avx512(px + b, py + b, e - b); break;
      case Isa::kAvx2: fwd_avx2(px + b, py + b, e - b); break;
      case Isa::kDefault: fwd_default(px + b, py + b, e - b); break;
    }
  });
}

void gelu_backward_cpu(const torch::Tensor& g, const torch::Tensor& x, torch::Tensor& gx) {
  check(g, x, "gelu_backward_cpu");
  check(x, gx, "gelu_backward_cpu");
  const float *pg = g.data_ptr<float>(), *px = x.data_ptr<float>();
  float* pgx = gx.data_ptr<float>();
  const Isa isa = cpu_isa();
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) {
    switch (isa) {
      case Isa::kAvx512: bwd_avx512(pg + b, px + b, pgx + b, e - b); break;
      case Isa::kAvx2: bwd_avx2(pg + b, px + b, pgx + b, e - b); break;
      case Isa::kDefault: bwd_default(pg + b, px + b, pgx + b, e - b); break;
    }
  });
}

torch::Tensor gelu(const torch::Tensor& x) {
  if (x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && own_cpu_kernels()) return CpuGelu::apply(x);
  return torch::gelu(x);
}

}  // namespace peft::model
