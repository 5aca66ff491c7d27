// model::dropout on the CPU: torch's distribution (keep with 1 - p, scale 1 / (1 - p)), a
// backward that applies the forward's mask, reproducible from torch::manual_seed, the same for
// any thread count, independent draws for neighbouring elements, and every floating dtype.
#include <cmath>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/dropout.h"


namespace {

torch::Tensor drop(const torch::Tensor& x, double p, bool training) { return peft::model::dropout(x, p, training); }

/// Kept elements of y = drop(ones): y / scale, as 0/1 doubles.
torch::Tensor kept(const torch::Tensor& y, double p) { return (y.to(torch::kDouble) * (1.0 - p)).round(); }

}  // namespace

TEST(Dropout, KeepsWithOneMinusPAndScalesTheKept) {
  torch::manual_seed(3);
  const int64_t n = 1 << 20;
  for (double p : {0.1, 0.5, 0.9}) {
    auto y = drop(torch::ones({n}), p, true);
    // Every element is 0 or exactly 1 / (1 - p) (as float).
    auto scaled = torch::full({n}, static_cast<float>(1.0 / (1.0 - p)));
    EXPECT_TRUE(((y == 0) | (y == scaled)).all().item<bool>()) << "p " << p;
    // The kept fraction within 5 standard deviations of 1 - p.
    const double frac = kept(y, p).mean().item<double>();
    const double sd = std::sqrt(p * (1 - p) / static_cast<double>(n));
    EXPECT_NEAR(frac, 1.0 - p, 5 * sd) << "p " << p;
    // Unbiased: E[y] = E[x].
    EXPECT_NEAR(y.to(torch::kDouble).mean().item<double>(), 1.0, 5 * sd / (1.0 - p)) << "p " << p;
  }
}

TEST(Dropout, NeighbouringElementsAreIndependent) {
  // Two elements share one 64-bit draw (its low and high halves): P(both kept) must be
  // (1 - p)^2, and so for elements a row apart.
  torch::manual_seed(4);
  const double p = 0.3;
  const int64_t n = 1 << 21;
  auto k = kept(drop(torch::ones({n}), p, true), p);
  auto even = k.slice(0, 0, n, 2), odd = k.slice(0, 1, n, 2);
  const double both = (even * odd).mean().item<double>();
  const double sd = std::sqrt(0.49 * 0.51 / (n / 2.0));
  EXPECT_NEAR(both, 0.49, 5 * sd);
  auto next_pair = k.slice(0, 2, n, 2);
  EXPECT_NEAR((even.slice(0, 0, next_pair.size(0)) * next_pair).mean().item<double>(), 0.49, 5 * sd);
}

TEST(Dropout, BackwardAppliesTheForwardMask) {
  torch::manual_seed(5);
  auto x = torch::randn({7, 33}, torch::requires_grad());
  auto y = drop(x, 0.25, true);
  auto g = torch::randn({7, 33});
  y.backward(g);
  auto mask = (y != 0).to(torch::kFloat);  // x has no exact zeros
  EXPECT_TRUE(torch::allclose(y, x.detach() * mask / 0.75, 1e-6, 1e-7));
  EXPECT_TRUE(torch::allclose(x.grad(), g * mask / 0.75, 1e-6, 1e-7));
  EXPECT_GT(mask.sum().item<double>(), 0);
  EXPECT_LT(mask.sum().item<double>(), 7 * 33);
}

TEST(Dropout, ReproducibleFromTheSeedAndFreshEachCall) {
  auto x = torch::ones({1000});
  torch::manual_seed(11);
  auto a1 = drop(x, 0.5, true), a2 = drop(x, 0.5, true);
  torch::manual_seed(11);
  auto b1 = drop(x, 0.5, true);
  EXPECT_TRUE(a1.equal(b1));
  EXPECT_FALSE(a1.equal(a2));
}

TEST(Dropout, SameMaskForAnyThreadCount) {
  const int before = at::get_num_threads();
  auto x = torch::randn({3, 200000});
  at::set_num_threads(1);
  torch::manual_seed(7);
  auto one = drop(x, 0.1, true);
  at::set_num_threads(2);
  torch::manual_seed(7);
  auto two = drop(x, 0.1, true);
  at::set_num_threads(before);
  EXPECT_TRUE(one.equal(two));
}

TEST(Dropout, OffInEvalAtZeroAndAllAtOne) {
  auto x = torch::randn({5, 6}, torch::requires_grad());
  EXPECT_TRUE(drop(x, 0.5, false).equal(x));
  EXPECT_TRUE(drop(x, 0.0, true).equal(x));
  auto z = drop(x, 1.0, true);
  EXPECT_TRUE(z.eq(0).all().item<bool>());
  z.sum().backward();
  EXPECT_TRUE(x.grad().eq(0).all().item<bool>());
  EXPECT_THROW(drop(x, 1.5, true), std::logic_error);
}

TEST(Dropout, EveryFloatingDtypeAndStridedInput) {
  for (auto dt : {torch::kFloat, torch::kDouble, torch::kBFloat16, torch::kHalf}) {
    torch::manual_seed(9);
    auto x = torch::randn({64, 48}).to(dt).t();  // not contiguous
    auto y = drop(x, 0.2, true);
    EXPECT_EQ(y.scalar_type(), dt);
    EXPECT_EQ(y.sizes(), x.sizes());
    auto keep = y != 0;
    // Kept elements are x / 0.8 in the dtype's precision.
    auto expect = (x.to(torch::kFloat) / 0.8).masked_fill(~keep, 0);
    EXPECT_TRUE(torch::allclose(y.to(torch::kFloat), expect, 1e-2, 1e-2)) << dt;
    const double frac = keep.to(torch::kDouble).mean().item<double>();
    EXPECT_NEAR(frac, 0.8, 0.05) << dt;
  }
}
