// model::gelu on the CPU: the exact GELU (x·Φ(x)) and its derivative against a double-precision
// reference, against LibTorch's kernel, any thread count, autograd, and the fallbacks.
#include <cmath>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/cpu_kernels.h"
#include "model/gelu.h"

namespace {

/// x·Φ(x) and Φ(x) + x·φ(x) in double.
std::pair<torch::Tensor, torch::Tensor> reference(const torch::Tensor& x) {
  auto d = x.to(torch::kDouble);
  auto cdf = 0.5 * (1.0 + torch::erf(d / std::sqrt(2.0)));
  auto pdf = torch::exp(-0.5 * d * d) / std::sqrt(2.0 * M_PI);
  return {d * cdf, cdf + d * pdf};
}

torch::Tensor grid() {
  // Dense over [-12, 12] (where Φ goes from 0 to 1), plus 0, tiny and large values.
  return torch::cat({torch::linspace(-12, 12, 1 << 20), torch::tensor({0.0f, -0.0f, 1e-30f, -1e-30f, 60.0f, -60.0f, 1e4f, -1e4f})});
}

}  // namespace

TEST(Gelu, MatchesTheExactFormulaInDouble) {
  auto x = grid();
  auto y = torch::empty_like(x), gx = torch::empty_like(x);
  peft::model::gelu_forward_cpu(x, y);
  peft::model::gelu_backward_cpu(torch::ones_like(x), x, gx);
  auto [ry, rd] = reference(x);
  // erf to 1.5e-7 (A&S 7.1.26, as LibTorch's), plus float rounding. On this grid LibTorch
  // 1.13's own kernels are 1.7e-7 (forward) and 2.6e-7 (backward) from the reference, relative
  // to max(1, |x|); this kernel 1.9e-7 and 2.7e-7.
  auto scale = x.to(torch::kDouble).abs().clamp_min(1.0);
  EXPECT_LT(((y.to(torch::kDouble) - ry).abs() / scale).max().item<double>(), 2.5e-7);
  EXPECT_LT(((gx.to(torch::kDouble) - rd).abs() / scale).max().item<double>(), 3.5e-7);
  EXPECT_EQ(y[-2].item<float>(), 1e4f);   // Φ(1e4) = 1
  EXPECT_EQ(y[-1].item<float>(), -0.0f);  // Φ(-1e4) = 0
}

TEST(Gelu, AgreesWithLibTorchsKernel) {
  torch::manual_seed(1);
  auto x = torch::randn({1 << 18}) * 4;
  auto y = torch::empty_like(x);
  peft::model::gelu_forward_cpu(x, y);
  EXPECT_LT((y - torch::gelu(x)).abs().max().item<float>(), 2e-6f);
  auto g = torch::randn_like(x), gx = torch::empty_like(x);
  peft::model::gelu_backward_cpu(g, x, gx);
  auto ref = torch::gelu_backward(g, x);
  EXPECT_LT((gx - ref).abs().max().item<float>(), 4e-6f);
}

TEST(Gelu, AutogradAndAnyThreadCount) {
  torch::manual_seed(2);
  auto x = (torch::randn({64, 1000}) * 3).requires_grad_(true);
  auto w = torch::randn({64, 1000});
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  auto y1 = peft::model::gelu(x);
  (y1 * w).sum().backward();
  auto g1 = x.grad().clone();
  x.mutable_grad().reset();
  at::set_num_threads(std::max(2, before));
  auto y2 = peft::model::gelu(x);
  (y2 * w).sum().backward();
  at::set_num_threads(before);
  EXPECT_TRUE(torch::equal(y1, y2));
  EXPECT_TRUE(torch::equal(g1, x.grad()));
  auto [ry, rd] = reference(x.detach());
  EXPECT_LT((x.grad().to(torch::kDouble) - w.to(torch::kDouble) * rd).abs().max().item<double>(), 1e-5);
  // A non-contiguous input: the same values.
  auto t = x.detach().t();
  EXPECT_TRUE(torch::equal(peft::model::gelu(t), y1.detach().t()));
}

TEST(Gelu, FallsBackToLibTorchOutsideFp32) {
  auto x = torch::linspace(-3, 3, 101, torch::kDouble);
  EXPECT_TRUE(torch::equal(peft::model::gelu(x), torch::gelu(x)));
  auto b = x.to(torch::kBFloat16);
  EXPECT_TRUE(torch::equal(peft::model::gelu(b), torch::gelu(b)));
}

TEST(CpuKernels, TheSwitchTakesPeftOrTorchAndNamesTheVariableOtherwise) {
  EXPECT_TRUE(peft::model::cpu_kernels_wanted(nullptr));
  EXPECT_TRUE(peft::model::cpu_kernels_wanted("peft"));
  EXPECT_FALSE(peft::model::cpu_kernels_wanted("torch"));
  try {
    peft::model::cpu_kernels_wanted("TORCH");
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("PEFT_CPU_KERNELS=\"TORCH\""), std::string::npos) << e.what();
  }
}
