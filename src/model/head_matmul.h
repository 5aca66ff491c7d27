#pragma once
// The attention's two batched products, q·kᵀ and weights·v, one small matrix product per
// (sequence, head).
//
// LibTorch's CPU bmm, built without MKL (Debian's LibTorch 1.13 uses OpenBLAS), loops over the
// batch in C++ and sends each item through the dispatcher: three select ops, resolve_conj and an
// addmm per (sequence, head), one after another on one thread. matmul on the heads' strided
// views first copies q, k and v into contiguous tensors, and the context is copied again to put
// the heads back together. On the tiny shape (16 sequences × 4 heads, 64 tokens) a step made
// 7,500 op calls, 2,200 of them select; one q·kᵀ took 660 µs.
//
// Here each product calls the BLAS's sgemm that LibTorch itself loaded, straight on the strided
// views (a head of q is a 64 × dh block with row stride dim: BLAS takes it as it is), split over
// the intra-op threads, with no copies. The context is written in [batch, len, heads, dh]
// order, so putting the heads back together is a view. The same shapes: 93 µs against 660
// (tiny), 0.73 ms against 2.1 (distilbert-base, 64 tokens), 31 ms against 42 (256 tokens).
// Backward is one such product per input. With the same inputs the results equal
// torch::matmul's up to the BLAS's own summation order. The scale 1/√dh rides in sgemm's
// alpha; where √dh is a power of two (dh 16 or 64, as DistilBERT's) that is exactly dividing q
// first.
//
// fp32 on the CPU only. CUDA, bf16 or fp16, CPU autocast, or PEFT_CPU_KERNELS=torch
// (model/cpu_kernels.h) take torch::matmul, as before.
#include <torch/types.h>

namespace peft::model {

/// (a / divisor) · b over the two leading (batch, head) dimensions: a [B, H, M, K], b [B, H, K,
/// N], any strides; the result is [B, H, M, N]. With heads_last its memory is [B, M, H, N]
/// (transpose(1, 2) of the result is contiguous). With `masked` (bool [B, 1, 1, N], true at a
/// padded key) the result is masked_fill(masked, lowest finite), as transformers' attention
/// masks its scores; on the BLAS path each row starts from the mask's row (0 or lowest) and the
/// product is added to it, in the same pass. Differentiable in a and b.
torch::Tensor head_matmul(const torch::Tensor& a, const torch::Tensor& b, double divisor = 1.0, bool heads_last = false,
                          const torch::Tensor& masked = {});

/// Whether head_matmul takes the BLAS path for fp32 CPU tensors in this process: the BLAS is
/// found and PEFT_CPU_KERNELS is not "torch".
bool head_matmul_uses_blas();

}  // namespace peft::model
