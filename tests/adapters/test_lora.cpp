// LoRA against the plain formula h = W0·x + b + (α/r)·B·A·x, written here with raw tensors.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "adapters/lora.h"
#include "adapter_test_util.h"
#include "core/error.h"
#include "model/autocast.h"

using namespace peft;
using namespace peft::adapters;

namespace {

using peft::testing::frozen_dense;

/// Random B so that the update is not zero (B starts at zero).
void randomise(LoraLinear& l, uint64_t seed) {
  torch::NoGradGuard g;
  torch::manual_seed(seed);
  l.lora_B().normal_(0.0, 0.5);
}

torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& w0, const torch::Tensor& b, const torch::Tensor& A,
                        const torch::Tensor& B, double scale) {
  return torch::matmul(x, w0.t()) + b + scale * torch::matmul(torch::matmul(x, A.t()), B.t());
}

/// A LinearBase that is not a DenseLinear (as an NF4 layer will be): merge must refuse it.
class OpaqueLinear : public model::LinearBase {
 public:
  explicit OpaqueLinear(std::shared_ptr<model::DenseLinear> d) : d_(std::move(d)) {}
  torch::Tensor forward(const torch::Tensor& x) override { return d_->forward(x); }
  int64_t in_features() const override { return d_->in_features(); }
  int64_t out_features() const override { return d_->out_features(); }
  torch::Tensor effective_weight() const override { return d_->effective_weight(); }
  torch::Tensor bias() const override { return d_->bias(); }

 private:
  std::shared_ptr<model::DenseLinear> d_;
};

}  // namespace

TEST(Lora, InitIsKaimingUniformAAndZeroB) {
  auto base = frozen_dense(48, 20, 1);
  torch::manual_seed(7);
  LoraLinear l(base, {8, 16, 0.0, false});
  EXPECT_EQ(l.lora_A().sizes(), (std::vector<int64_t>{8, 48}));
  EXPECT_EQ(l.lora_B().sizes(), (std::vector<int64_t>{20, 8}));
  EXPECT_EQ(l.lora_B().count_nonzero().item<int64_t>(), 0);
  // kaiming_uniform(a=√5) on [r, in] is U(±1/√in), nn.Linear's default.
  const double bound = 1.0 / std::sqrt(48.0);
  EXPECT_LE(l.lora_A().abs().max().item<double>(), bound);
  EXPECT_GT(l.lora_A().abs().max().item<double>(), 0.8 * bound);
  EXPECT_NEAR(l.lora_A().std().item<double>(), bound / std::sqrt(3.0), 0.2 * bound);
  EXPECT_TRUE(l.lora_A().requires_grad());
  EXPECT_FALSE(base->weight_param().requires_grad());
  // A fresh adapter is the identity update.
  auto x = torch::randn({3, 48});
  EXPECT_TRUE(torch::equal(l.forward(x), base->forward(x)));
}

TEST(Lora, ScalingIsAlphaOverRankOrRsLora) {
  auto base = frozen_dense(16, 16, 2);
  EXPECT_DOUBLE_EQ(LoraLinear(base, {8, 16, 0.0, false}).scaling(), 2.0);
  EXPECT_DOUBLE_EQ(LoraLinear(base, {4, 16, 0.0, true}).scaling(), 8.0);
}

TEST(Lora, NamesFollowPeft) {
  LoraLinear l(frozen_dense(16, 12, 3), {4, 8, 0.0, false});
  auto names = l.named_parameters().keys();
  EXPECT_EQ(names, (std::vector<std::string>{"base_layer.weight", "base_layer.bias", "lora_A.weight", "lora_B.weight"}));
  auto t = l.peft_tensors();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].first, "lora_A.weight");
  EXPECT_EQ(t[1].first, "lora_B.weight");
}

TEST(Lora, ForwardEqualsFormula) {
  auto base = frozen_dense(24, 18, 4);
  LoraLinear l(base, {4, 12, 0.0, false});
  randomise(l, 5);
  auto x = torch::randn({2, 7, 24});
  auto y = l.forward(x);
  auto ref = reference(x, base->weight_param(), base->bias_param(), l.lora_A(), l.lora_B(), 3.0);
  EXPECT_TRUE(torch::allclose(y, ref, 1e-5, 1e-5)) << (y - ref).abs().max().item<double>();
  // effective_weight is W0 + (α/r)·B·A.
  auto w = base->weight_param() + 3.0 * torch::matmul(l.lora_B(), l.lora_A());
  EXPECT_TRUE(torch::allclose(l.effective_weight(), w, 1e-6, 1e-6));
}

TEST(Lora, GradientsMatchAutogradOnPlainFormula) {
  auto base = frozen_dense(20, 14, 6);
  LoraLinear l(base, {3, 6, 0.0, false});
  randomise(l, 7);
  auto x = torch::randn({5, 20});
  auto g = torch::randn({5, 14});
  (l.forward(x) * g).sum().backward();

  auto A = l.lora_A().detach().clone().requires_grad_(true);
  auto B = l.lora_B().detach().clone().requires_grad_(true);
  (reference(x, base->weight_param(), base->bias_param(), A, B, 2.0) * g).sum().backward();
  EXPECT_TRUE(torch::allclose(l.lora_A().grad(), A.grad(), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(l.lora_B().grad(), B.grad(), 1e-5, 1e-6));
  EXPECT_FALSE(base->weight_param().grad().defined());  // the base stays frozen
}

TEST(Lora, GradientsMatchFiniteDifferences) {
  auto base = frozen_dense(9, 7, 8);
  LoraLinear l(base, {2, 4, 0.0, false});
  randomise(l, 9);
  l.to(torch::kFloat64);
  auto x = torch::randn({4, 9}, torch::kFloat64);
  auto g = torch::randn({4, 7}, torch::kFloat64);
  auto loss = [&] { return (l.forward(x) * g).sum(); };
  loss().backward();
  const double h = 1e-6;
  for (auto* p : {&l.lora_A(), &l.lora_B()}) {
    auto grad = p->grad().clone();
    auto flat = p->view({-1});
    for (int64_t i = 0; i < flat.numel(); i += 3) {
      torch::NoGradGuard ng;
      const double orig = flat[i].item<double>();
      flat[i].fill_(orig + h);
      const double up = loss().item<double>();
      flat[i].fill_(orig - h);
      const double down = loss().item<double>();
      flat[i].fill_(orig);
      EXPECT_NEAR(grad.view({-1})[i].item<double>(), (up - down) / (2 * h), 1e-6) << "element " << i;
    }
  }
}

TEST(Lora, MergeAndUnmerge) {
  auto base = frozen_dense(32, 24, 10);
  const auto w0 = base->weight_param().clone();
  LoraLinear l(base, {4, 8, 0.0, false});
  randomise(l, 11);
  auto x = torch::randn({6, 32});
  auto unmerged = l.forward(x);
  l.merge();
  EXPECT_TRUE(l.merged());
  auto merged = l.forward(x);
  EXPECT_TRUE(torch::allclose(merged, unmerged, 1e-5, 1e-5)) << (merged - unmerged).abs().max().item<double>();
  EXPECT_TRUE(torch::allclose(base->weight_param(), w0 + 2.0 * torch::matmul(l.lora_B(), l.lora_A()), 1e-6, 1e-6));
  EXPECT_THROW(l.merge(), std::logic_error);
  l.unmerge();
  EXPECT_FALSE(l.merged());
  EXPECT_TRUE(torch::allclose(base->weight_param(), w0, 0, 1e-6));
  EXPECT_TRUE(torch::allclose(l.forward(x), unmerged, 1e-6, 1e-6));
}

// Merged inference of a bf16 trial runs inside its autocast region: B·A is still taken in fp32.
TEST(Lora, MergeInsideBf16AutocastIsTheFp32One) {
  auto base = frozen_dense(32, 24, 10);
  const auto w0 = base->weight_param().clone();
  LoraLinear l(base, {4, 8, 0.0, false});
  randomise(l, 11);
  const auto merged_fp32 = w0 + 2.0 * torch::matmul(l.lora_B(), l.lora_A());
  model::AutocastGuard bf16(torch::kCPU, true);
  l.merge();
  EXPECT_TRUE(torch::allclose(base->weight_param(), merged_fp32, 1e-6, 1e-6))
      << (base->weight_param() - merged_fp32).abs().max().item<double>();
  l.unmerge();
  EXPECT_TRUE(torch::allclose(base->weight_param(), w0, 0, 1e-6));
}

TEST(Lora, DropoutOnlyOnTheAdapterPathAndOnlyInTraining) {
  auto base = frozen_dense(64, 32, 12);
  LoraLinear l(base, {4, 8, 0.5, false});
  randomise(l, 13);
  auto x = torch::randn({8, 64});
  l.eval();
  auto ref = reference(x, base->weight_param(), base->bias_param(), l.lora_A(), l.lora_B(), 2.0);
  EXPECT_TRUE(torch::allclose(l.forward(x), ref, 1e-5, 1e-5));
  l.train();
  auto y = l.forward(x);
  EXPECT_FALSE(torch::allclose(y, ref, 1e-3, 1e-3));
  // With B zero, dropout on the adapter path changes nothing.
  {
    torch::NoGradGuard g;
    l.lora_B().zero_();
  }
  EXPECT_TRUE(torch::equal(l.forward(x), base->forward(x)));
}

TEST(Lora, WorksOnAnyLinearBaseButMergesOnlyDense) {
  auto d = frozen_dense(16, 8, 14);
  LoraLinear l(std::make_shared<OpaqueLinear>(d), {2, 4, 0.0, false});
  randomise(l, 15);
  auto x = torch::randn({3, 16});
  auto ref = reference(x, d->weight_param(), d->bias_param(), l.lora_A(), l.lora_B(), 2.0);
  EXPECT_TRUE(torch::allclose(l.forward(x), ref, 1e-5, 1e-5));
  EXPECT_THROW(l.merge(), std::logic_error);
}

TEST(Lora, LoadChecksShapesAndNamesTheTensor) {
  LoraLinear l(frozen_dense(16, 8, 16), {2, 4, 0.0, false});
  std::map<std::string, torch::Tensor> t{{"lora_A.weight", torch::ones({2, 16})}, {"lora_B.weight", torch::ones({8, 3})}};
  try {
    l.load_peft_tensors(t, "x.q_lin.");
    FAIL() << "expected a shape error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("x.q_lin.lora_B.weight"), std::string::npos) << e.what();
  }
  t["lora_B.weight"] = torch::full({8, 2}, 0.5);
  l.load_peft_tensors(t, "x.q_lin.");
  EXPECT_TRUE(torch::equal(l.lora_B(), torch::full({8, 2}, 0.5)));
  t.erase("lora_A.weight");
  EXPECT_THROW(l.load_peft_tensors(t, "x.q_lin."), InputError);
}

TEST(Lora, OptionsAreValidated) {
  auto base = frozen_dense(8, 8, 17);
  EXPECT_THROW(LoraLinear(base, {0, 8, 0.0, false}), InputError);
  EXPECT_THROW(LoraLinear(base, {2, -1, 0.0, false}), InputError);
  EXPECT_THROW(LoraLinear(base, {2, 8, 1.0, false}), InputError);
}
