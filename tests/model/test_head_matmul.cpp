// model::head_matmul: the attention's per-head products through the BLAS, against LibTorch's
// matmul in double, for the strided views the attention passes (q, kᵀ and v as heads of a
// [batch, len, dim] projection), column- and row-major operands, heads-last results, the scale,
// gradients into both inputs in their own memory order, any thread count, and the fallbacks.
#include <cmath>
#include <limits>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/autocast.h"
#include "model/head_matmul.h"

namespace {

using peft::model::head_matmul;

/// [bs, len, heads·dh] viewed as heads: [bs, heads, len, dh], the attention's q, k and v.
torch::Tensor heads_of(const torch::Tensor& x, int64_t heads) {
  const int64_t bs = x.size(0), len = x.size(1), dh = x.size(2) / heads;
  return x.view({bs, len, heads, dh}).transpose(1, 2);
}

/// Forward and both gradients of head_matmul against matmul in double, for a loss with a
/// random weight per output element.
void expect_matches(const torch::Tensor& a0, const torch::Tensor& b0, double divisor, bool heads_last, const std::string& what) {
  auto a = a0.detach().requires_grad_(true), b = b0.detach().requires_grad_(true);
  auto out = head_matmul(a, b, divisor, heads_last);
  auto ad = a0.detach().to(torch::kDouble).requires_grad_(true), bd = b0.detach().to(torch::kDouble).requires_grad_(true);
  auto ref = torch::matmul(ad, bd) / divisor;
  ASSERT_EQ(out.sizes(), ref.sizes()) << what;
  EXPECT_LT((out.to(torch::kDouble) - ref).abs().max().item<double>(), 1e-4) << what;
  if (heads_last) {
    EXPECT_TRUE(out.transpose(1, 2).is_contiguous()) << what;
  }
  auto w = torch::randn(ref.sizes(), torch::kDouble);
  (out.to(torch::kDouble) * w).sum().backward();
  (ref * w).sum().backward();
  EXPECT_LT((a.grad().to(torch::kDouble) - ad.grad()).abs().max().item<double>(), 1e-4) << what << ": grad a";
  EXPECT_LT((b.grad().to(torch::kDouble) - bd.grad()).abs().max().item<double>(), 1e-4) << what << ": grad b";
  // Gradients come back in their inputs' memory order where that is dense.
  if (a0.is_non_overlapping_and_dense()) EXPECT_EQ(a.grad().strides(), a0.strides()) << what;
  if (b0.is_non_overlapping_and_dense()) EXPECT_EQ(b.grad().strides(), b0.strides()) << what;
}

}  // namespace

TEST(HeadMatmul, TakesTheBlasPathForFp32OnTheCpu) {
  // Both LibTorch builds (Debian's OpenBLAS, the wheel's own BLAS) export sgemm_; without it
  // every other test here would only check the fallback.
  EXPECT_TRUE(peft::model::head_matmul_uses_blas());
}

TEST(HeadMatmul, MatchesMatmulOnTheAttentionsViews) {
  torch::manual_seed(1);
  const int64_t bs = 3, len = 7, heads = 4, dh = 5;
  auto q = heads_of(torch::randn({bs, len, heads * dh}), heads);
  auto k = heads_of(torch::randn({bs, len, heads * dh}), heads);
  auto v = heads_of(torch::randn({bs, len, heads * dh}), heads);
  expect_matches(q, k.transpose(2, 3), std::sqrt(5.0), false, "q kT / sqrt(dh)");
  auto w = torch::softmax(torch::randn({bs, heads, len, len}), -1);
  expect_matches(w, v, 1.0, true, "weights v, heads last");
  expect_matches(w, v, 1.0, false, "weights v");
}

TEST(HeadMatmul, MatchesMatmulForEveryOperandLayout) {
  torch::manual_seed(2);
  const int64_t B = 2, H = 3, M = 6, K = 4, N = 5;
  for (bool a_col : {false, true})
    for (bool b_col : {false, true}) {
      auto a = a_col ? torch::randn({B, H, K, M}).transpose(2, 3) : torch::randn({B, H, M, K});
      auto b = b_col ? torch::randn({B, H, N, K}).transpose(2, 3) : torch::randn({B, H, K, N});
      expect_matches(a, b, 2.0, false, std::string("a ") + (a_col ? "col" : "row") + "-major, b " + (b_col ? "col" : "row") + "-major");
    }
  // Neither stride 1 (every other element): copied first, then the same.
  auto a = torch::randn({B, H, M, 2 * K}).slice(3, 0, 2 * K, 2);
  expect_matches(a, torch::randn({B, H, K, N}), 1.0, false, "a with stride 2");
  // Degenerate shapes: one row, one column, an empty contraction.
  expect_matches(torch::randn({B, H, 1, K}), torch::randn({B, H, K, N}), 1.0, false, "M = 1");
  expect_matches(torch::randn({B, H, M, K}), torch::randn({B, H, K, 1}), 1.0, true, "N = 1");
  auto empty = head_matmul(torch::randn({B, H, M, 0}), torch::randn({B, H, 0, N}));
  EXPECT_EQ(empty.abs().sum().item<float>(), 0.0f);
}

TEST(HeadMatmul, TheSameForAnyThreadCount) {
  torch::manual_seed(3);
  auto a = torch::randn({4, 3, 16, 8}), b = torch::randn({4, 3, 8, 16});
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  auto one = head_matmul(a, b, 4.0);
  at::set_num_threads(std::max(2, before));
  auto many = head_matmul(a, b, 4.0);
  at::set_num_threads(before);
  EXPECT_TRUE(torch::equal(one, many));
}

TEST(HeadMatmul, PowerOfTwoScaleIsTheSameAsDividingFirst) {
  // The attention divided q by √dh before its product; the scale now rides in sgemm's alpha.
  // For dh a power of four (16, 64) that is exact.
  torch::manual_seed(4);
  auto q = heads_of(torch::randn({2, 9, 4 * 16}), 4), k = heads_of(torch::randn({2, 9, 4 * 16}), 4);
  auto folded = head_matmul(q, k.transpose(2, 3), 4.0);
  auto first = head_matmul(q / 4.0, k.transpose(2, 3));
  EXPECT_TRUE(torch::equal(folded, first));
}

TEST(HeadMatmul, FallsBackToMatmulOutsideFp32Cpu) {
  torch::manual_seed(5);
  auto a = torch::randn({2, 2, 3, 4}), b = torch::randn({2, 2, 4, 5});
  // double: LibTorch's matmul, the same values.
  auto d = head_matmul(a.to(torch::kDouble), b.to(torch::kDouble), 2.0, true);
  EXPECT_EQ(d.scalar_type(), torch::kDouble);
  EXPECT_TRUE(d.transpose(1, 2).is_contiguous());
  EXPECT_LT((d - torch::matmul(a.to(torch::kDouble), b.to(torch::kDouble)) / 2.0).abs().max().item<double>(), 1e-12);
  // Under CPU autocast the product is bf16, as torch's matmul there.
  peft::model::AutocastGuard autocast(torch::Device(torch::kCPU), true);
  EXPECT_EQ(head_matmul(a, b).scalar_type(), torch::kBFloat16);
}

TEST(HeadMatmul, AMaskGivesMaskedFillsScoresExactly) {
  // Padded keys: the BLAS path starts those columns at the lowest float and adds the product,
  // which rounds back to the lowest float; the others are the plain product. So the result
  // equals masked_fill after the product, bit for bit, and so do both gradients.
  torch::manual_seed(6);
  const int64_t bs = 3, len = 9, heads = 2, dh = 16;
  auto q0 = heads_of(torch::randn({bs, len, heads * dh}) * 30, heads), k0 = heads_of(torch::randn({bs, len, heads * dh}), heads);
  auto mask = torch::ones({bs, len}, torch::kLong);
  mask.index_put_({0, torch::indexing::Slice(5, torch::indexing::None)}, 0);  // sequence 0: 5 tokens
  mask.index_put_({2, torch::indexing::Slice(1, torch::indexing::None)}, 0);  // sequence 2: 1 token; sequence 1: none padded
  auto masked = (mask == 0).view({bs, 1, 1, len});
  auto q = q0.detach().requires_grad_(true), k = k0.detach().requires_grad_(true);
  auto fused = head_matmul(q, k.transpose(2, 3), 4.0, false, masked);
  auto q2 = q0.detach().requires_grad_(true), k2 = k0.detach().requires_grad_(true);
  auto plain = head_matmul(q2, k2.transpose(2, 3), 4.0).masked_fill(masked, std::numeric_limits<float>::lowest());
  EXPECT_TRUE(torch::equal(fused, plain));
  auto w = torch::randn(fused.sizes());
  (torch::softmax(fused, -1) * w).sum().backward();
  (torch::softmax(plain, -1) * w).sum().backward();
  EXPECT_TRUE(torch::equal(q.grad(), q2.grad()));
  EXPECT_TRUE(torch::equal(k.grad(), k2.grad()));
  // And LibTorch's matmul + masked_fill (the fallback) within rounding.
  auto ref = torch::matmul(q0 / 4.0, k0.transpose(2, 3)).masked_fill(masked, std::numeric_limits<float>::lowest());
  EXPECT_TRUE(torch::allclose(torch::softmax(fused, -1), torch::softmax(ref, -1), 1e-5, 1e-6));
  EXPECT_TRUE(torch::equal(fused.masked_select(masked.expand_as(fused)), ref.masked_select(masked.expand_as(ref))));
}
