#pragma once
// GELU (Hendrycks & Gimpel, 2016), the exact form: x · Φ(x) = x · ½(1 + erf(x/√2)), as
// torch.nn.functional.gelu(approximate="none") and transformers' "gelu".
//
// LibTorch 1.13's CPU kernel evaluates erf with Abramowitz & Stegun's 7.1.26 (|error| ≤ 1.5e-7)
// and SLEEF's exp at 1-ulp accuracy, in AVX2; its backward computes Φ and φ with an erf and an
// exp more. On distilbert-base (1024 × 3072 per layer) that was 3.2 ms forward and 6.0 ms
// backward per layer, 5 % of a LoRA step. Here the same 7.1.26 erf shares one exp(-x²/2) with
// φ(x) = exp(-x²/2)/√(2π) (the backward needs both), the exp a degree-7 polynomial after
// Cody-Waite reduction (a few ulp), in one pass, compiled for AVX-512 and AVX2 as well and
// picked at run time. Values differ from LibTorch's by the exp's last bits (about 1e-7).
//
// fp32 CPU tensors only, and only with PEFT_CPU_KERNELS unset or "peft" (model/cpu_kernels.h):
// anything else takes torch::gelu.
#include <torch/types.h>

namespace peft::model {

/// GELU of x, differentiable; the backward recomputes from x (which it keeps, as LibTorch's).
torch::Tensor gelu(const torch::Tensor& x);

/// The kernels, exposed for tests: y = gelu(x); gx = g · gelu'(x). Contiguous fp32 CPU tensors
/// of one shape.
void gelu_forward_cpu(const torch::Tensor& x, torch::Tensor& y);
void gelu_backward_cpu(const torch::Tensor& g, const torch::Tensor& x, torch::Tensor& gx);

}  // namespace peft::model
