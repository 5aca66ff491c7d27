#include "model/head_matmul.h"

#include <dlfcn.h>

#include <algorithm>
#include <climits>

#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include "core/error.h"
#include "model/autocast.h"
#include "model/cpu_kernels.h"
#include "model/distilbert.h"

namespace peft::model {
namespace {

// Fortran BLAS sgemm, column-major: C = alpha·op(A)·op(B) + beta·C.
using SgemmFn = void (*)(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
                         const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
                         const int* ldc);

/// The sgemm_ already in the process: the BLAS LibTorch links (Debian: libblas.so.3, OpenBLAS;
/// the PyTorch wheel: its libtorch_cpu), so it shares LibTorch's OpenMP runtime and runs on one
/// thread inside at::parallel_for. Null when there is none or PEFT_CPU_KERNELS=torch.
SgemmFn blas_sgemm() {
  static const SgemmFn fn = own_cpu_kernels() ? reinterpret_cast<SgemmFn>(dlsym(RTLD_DEFAULT, "sgemm_")) : nullptr;
  return fn;
}

/// How BLAS reads one matrix of `rows` × `cols` with strides (rs, cs): its op and leading
/// dimension for a column-major product of the transpose (see gemm_heads below). False when
/// neither stride is 1 (then the caller copies).
bool blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs, char& op, int& ld) {
  int64_t l = 0;
  if (cs == 1 && (rows == 1 || rs >= cols)) {
    op = 'N', l = std::max<int64_t>({rs, cols, 1});  // row-major: read column-major it is the transpose
    if (rows == 1) l = std::max<int64_t>(cols, 1);
  } else if (rs == 1 && (cols == 1 || cs >= rows)) {
    op = 'T', l = std::max<int64_t>({cs, rows, 1});  // column-major
    if (cols == 1) l = std::max<int64_t>(rows, 1);
  } else {
    return false;
  }
  if (l > INT_MAX) return false;
  ld = static_cast<int>(l);
  return true;
}

bool blas_ok(const torch::Tensor& t) {
  char op;
  int ld;
  return blas_layout(t.size(2), t.size(3), t.stride(2), t.stride(3), op, ld);
}

/// c[i] = alpha · a[i] · b[i] for every (batch, head) i; a [B, H, M, K], b [B, H, K, N] and c
/// [B, H, M, N] already allocated, each matrix with a unit stride (blas_ok). With a key_bias of
/// [B, N] (contiguous fp32; empty or undefined: none), every row of item (x, ·) starts from
/// key_bias[x] and sgemm adds the product to it (beta 1).
void gemm_heads(SgemmFn sgemm, const torch::Tensor& a, const torch::Tensor& b, torch::Tensor& c, float alpha,
                const torch::Tensor& key_bias = {}) {
  if (c.stride(3) != 1) {
    PEFT_CHECK(!key_bias.defined() || key_bias.numel() == 0, "head_matmul: a key bias needs a row-major result");
    // A column-major result: cᵀ = bᵀ · aᵀ, row-major.
    auto ct = c.transpose(2, 3);
    gemm_heads(sgemm, b.transpose(2, 3), a.transpose(2, 3), ct, alpha);
    return;
  }
  const int64_t B = c.size(0), H = c.size(1), M = c.size(2), N = c.size(3), K = a.size(3);
  if (B * H == 0 || M == 0 || N == 0) return;
  if (K == 0) {
    if (key_bias.defined() && key_bias.numel() > 0)
      c.copy_(key_bias.view({B, 1, 1, N}).expand_as(c));
    else
      c.zero_();
    return;
  }
  // Row-major c = a·b is column-major cᵀ (N × M, ld = c's row stride) = bᵀ · aᵀ.
  char op_b, op_a;
  int ld_b, ld_a;
  blas_layout(K, N, b.stride(2), b.stride(3), op_b, ld_b);
  blas_layout(M, K, a.stride(2), a.stride(3), op_a, ld_a);
  const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
  const int ld_c = static_cast<int>(std::max<int64_t>({c.stride(2), N, 1}));
  const float* pa = a.data_ptr<float>();
  const float* pb = b.data_ptr<float>();
  float* pc = c.data_ptr<float>();
  const int64_t a0 = a.stride(0), a1 = a.stride(1), b0 = b.stride(0), b1 = b.stride(1), c0 = c.stride(0), c1 = c.stride(1);
  const float* bias = key_bias.defined() && key_bias.numel() > 0 ? key_bias.data_ptr<float>() : nullptr;
  // One item per (batch, head); inside at::parallel_for the BLAS runs on the calling thread.
  at::parallel_for(0, B * H, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t x = i / H, y = i % H;
      float* ci = pc + x * c0 + y * c1;
      float beta = 0.0f;
      if (bias) {
        const float* row = bias + x * N;
        if (std::any_of(row, row + N, [](float v) { return v != 0.0f; })) {
          for (int64_t r = 0; r < M; ++r) std::copy(row, row + N, ci + r * ld_c);
          beta = 1.0f;
        }
      }
      sgemm(&op_b, &op_a, &m, &n, &k, &alpha, pb + x * b0 + y * b1, &ld_b, pa + x * a0 + y * a1, &ld_a, &beta, ci, &ld_c);
    }
  });
}

torch::Tensor blas_ready(const torch::Tensor& t) { return blas_ok(t) ? t : t.contiguous(); }

torch::Tensor product(SgemmFn sgemm, const torch::Tensor& a, const torch::Tensor& b, float alpha, bool heads_last,
                      const torch::Tensor& key_bias) {
  const int64_t B = a.size(0), H = a.size(1), M = a.size(2), N = b.size(3);
  auto c = heads_last ? torch::empty({B, M, H, N}, a.options()).transpose(1, 2) : torch::empty({B, H, M, N}, a.options());
  gemm_heads(sgemm, blas_ready(a), blas_ready(b), c, alpha, key_bias);
  return c;
}

class HeadMatmul : public torch::autograd::Function<HeadMatmul> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a, const torch::Tensor& b, double alpha,
                               bool heads_last, const torch::Tensor& key_bias) {
    ctx->saved_data["alpha"] = alpha;
    ctx->save_for_backward({a, b});
    return product(blas_sgemm(), a, b, static_cast<float>(alpha), heads_last, key_bias);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& a = saved[0];
    const auto& b = saved[1];
    const auto alpha = static_cast<float>(ctx->saved_data["alpha"].toDouble());
    const torch::Tensor g = blas_ready(grads[0]);
    torch::Tensor ga, gb;
    // Each gradient in its input's own memory order (the heads' strided views of q, k and v), so
    // the views' backward is a view too.
    if (ctx->needs_input_grad(0)) {
      ga = torch::empty_like(a, at::MemoryFormat::Preserve);  // alpha · g · bᵀ
      if (!blas_ok(ga)) ga = torch::empty_like(a, at::MemoryFormat::Contiguous);
      gemm_heads(blas_sgemm(), g, blas_ready(b).transpose(2, 3), ga, alpha);
    }
    if (ctx->needs_input_grad(1)) {
      gb = torch::empty_like(b, at::MemoryFormat::Preserve);  // alpha · aᵀ · g
      if (!blas_ok(gb)) gb = torch::empty_like(b, at::MemoryFormat::Contiguous);
      gemm_heads(blas_sgemm(), blas_ready(a).transpose(2, 3), g, gb, alpha);
    }
    return {ga, gb, torch::Tensor(), torch::Tensor(), torch::Tensor()};  // the key bias is a constant
  }
};

bool fits_int(const torch::Tensor& t) {
  for (int64_t d = 2; d < 4; ++d)
    if (t.size(d) > INT_MAX) return false;
  return true;
}

}  // namespace

bool head_matmul_uses_blas() { return blas_sgemm() != nullptr; }

torch::Tensor head_matmul(const torch::Tensor& a, const torch::Tensor& b, double divisor, bool heads_last, const torch::Tensor& masked) {
  const bool blas = a.dim() == 4 && b.dim() == 4 && a.device().is_cpu() && b.device().is_cpu() &&
                    a.scalar_type() == torch::kFloat32 && b.scalar_type() == torch::kFloat32 && a.size(0) == b.size(0) &&
                    a.size(1) == b.size(1) && a.size(3) == b.size(2) && fits_int(a) && fits_int(b) &&
                    !autocast_enabled(c10::DeviceType::CPU) && head_matmul_uses_blas();
  const bool mask_fits = !masked.defined() || (masked.dim() == 4 && masked.scalar_type() == torch::kBool && masked.size(0) == a.size(0) &&
                                               masked.size(1) == 1 && masked.size(2) == 1 && masked.size(3) == b.size(3) && !heads_last);
  if (blas && mask_fits) {
    // No mask: an empty bias (a custom Function takes no undefined tensor argument).
    torch::Tensor key_bias = torch::empty({0}, a.options());
    if (masked.defined()) {
      // lowest + s rounds to lowest for any |s| < 2¹⁰³: the same scores as masked_fill's.
      key_bias = torch::zeros({a.size(0), b.size(3)}, a.options())
                     .masked_fill_(masked.reshape({a.size(0), b.size(3)}), lowest_finite(torch::kFloat32));
    }
    return HeadMatmul::apply(a, b, 1.0 / divisor, heads_last, key_bias);
  }
  // LibTorch's matmul (autocast casts under it) and masked_fill, in the order the attention
  // always used.
  auto out = torch::matmul(divisor == 1.0 ? a : a / divisor, b);
  if (masked.defined()) out = out.masked_fill(masked, lowest_finite(out.scalar_type()));
  if (heads_last) out = out.transpose(1, 2).contiguous().transpose(1, 2);
  return out;
}

}  // namespace peft::model
