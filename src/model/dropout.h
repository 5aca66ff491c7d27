#pragma once
// Dropout (Srivastava et al., 2014, "Dropout: A Simple Way to Prevent Neural Networks from
// Overfitting"): each element kept with probability 1 - p and scaled by 1 / (1 - p), as
// torch.nn.functional.dropout in training mode.
//
// On the CPU, LibTorch draws its mask with bernoulli_ one element at a time from the
// generator (17 ns an element on one core, in LibTorch 1.13 and torch 2.15 alike), then
// divides and multiplies in two more passes and keeps a float mask for backward: a dropout of
// a 1024 x 384 activation cost as much as a 1024 x 384 x 384 matmul, and a BERT step takes
// about 25 of them plus one over every attention matrix. Here the keep/drop bit of element i
// is a counter-based draw, SplitMix64(seed + ⌊i/2⌋·γ) (Steele, Lea & Flood, OOPSLA 2014), 32
// bits an element, so the mask is made in the same pass as the product, in parallel, the same
// for any thread count, and is never stored: backward recomputes it from the seed. Each call
// takes its 64-bit seed from LibTorch's default CPU generator, so a run is reproducible from
// torch::manual_seed and a mid-trial checkpoint (which saves that generator) resumes it.
// The masks are other draws than torch's (the same distribution); on CUDA torch's fused
// dropout runs.
#include <cstdint>

#include <torch/types.h>

namespace peft::model {

/// x in training mode with dropout probability p (0 <= p <= 1); x itself when !training or
/// p == 0. Differentiable in x.
torch::Tensor dropout(const torch::Tensor& x, double p, bool training);

/// The CPU kernel, exposed for tests and the benchmark: out[i] = x[i] · (u_i >= threshold ?
/// scale : 0), u_i the element's 32-bit draw for `seed`. x contiguous (float, double, bf16
/// or half); out the same shape and dtype. Backward is the same call on the gradient.
void dropout_mask_apply_cpu(const torch::Tensor& x, torch::Tensor& out, double p, uint64_t seed);

}  // namespace peft::model
