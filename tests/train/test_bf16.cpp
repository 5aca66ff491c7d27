// bf16 on the CPU (CPU autocast): every method and both heads train, evaluate and measure
// inference in bf16, within a stated error budget of the same trial in fp32; the autocast
// guard leaves autocast off after an exception; QLoRA's compute dtype is what runs.
//
// bf16 error budget: bf16 keeps 8 significant bits (relative rounding 2^-9 ≈ 2e-3 per
// operation). Through the tiny encoder (2 layers, dim 64) the logits of one forward pass
// stay within 2e-2 of fp32 (relative, max over the batch), and after a few training steps the
// evaluation loss within 3e-2 (training amplifies rounding a little, the task is the same).
#include <cmath>
#include <stdexcept>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/autocast.h"
#include "model/distilbert.h"
#include "model/nf4_linear.h"
#include "quant/nf4.h"
#include "train/method_setup.h"
#include "train/trial_runner.h"

namespace peft::train {
namespace {

constexpr double kLogitBudget = 2e-2;
constexpr double kEvalLossBudget = 3e-2;

double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max() / b.to(torch::kFloat64).abs().max()).item<double>();
}

TEST(Autocast, GuardRestoresStateAfterAnException) {
  ASSERT_FALSE(model::autocast_enabled(c10::DeviceType::CPU));
  try {
    model::AutocastGuard g(torch::kCPU, true);
    EXPECT_TRUE(model::autocast_enabled(c10::DeviceType::CPU));
    throw std::runtime_error("forward failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_FALSE(model::autocast_enabled(c10::DeviceType::CPU));
  // A matmul after the failure runs in fp32 again.
  auto a = torch::randn({4, 4});
  EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kFloat32);
}

TEST(Autocast, NestedGuardsAndDisabledGuard) {
  {
    model::AutocastGuard outer(torch::kCPU, true);
    {
      model::AutocastGuard off(torch::kCPU, false);  // a no-op guard leaves autocast as it is
      auto a = torch::randn({4, 4});
      EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kBFloat16);
    }
    {
      model::AutocastGuard inner(torch::kCPU, true);
    }
    EXPECT_TRUE(model::autocast_enabled(c10::DeviceType::CPU));
  }
  EXPECT_FALSE(model::autocast_enabled(c10::DeviceType::CPU));
}

TEST(Bf16, PaddedForwardOfBothHeadsWithinBudget) {
  // The first-step failure this guards against: the attention mask's fill must fit bf16.
  auto cfg = model::DistilBertConfig::tiny(200);
  model::DistilBert m(cfg, {model::Head::Classifier, model::Head::MLM});
  m.init_weights(5);
  m.eval();
  torch::manual_seed(1);
  auto ids = torch::randint(1, 200, {4, 12}, torch::kLong);
  auto mask = torch::ones({4, 12}, torch::kLong);
  mask.narrow(1, 7, 5).narrow(0, 1, 2).zero_();  // two padded rows
  torch::NoGradGuard ng;
  for (auto head : {model::Head::Classifier, model::Head::MLM, model::Head::None}) {
    auto ref = m.forward(head, ids, mask);
    torch::Tensor low;
    {
      model::AutocastGuard g(torch::kCPU, true);
      low = m.forward(head, ids, mask);
    }
    EXPECT_LE(rel_err(low.to(torch::kFloat32), ref), kLogitBudget) << model::head_name(head);
  }
}

TEST(Bf16, QloraComputeDtypeIsWhatRuns) {
  torch::manual_seed(2);
  auto w = torch::randn({48, 64}) * 0.05;
  auto b = torch::randn({48}) * 0.01;
  auto x = torch::randn({3, 5, 64});
  model::NF4Linear q(w, b);
  torch::NoGradGuard ng;
  // float32 compute dtype: fp32 even inside bf16 autocast (autocast excluded in the layer).
  auto fp32_ref = torch::nn::functional::linear(x, quant::dequantize_nf4(q.nf4(), torch::kFloat32), b);
  {
    model::AutocastGuard g(torch::kCPU, true);
    auto y = q.forward(x);
    EXPECT_EQ(y.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::equal(y, fp32_ref));
  }
  // bfloat16 compute dtype: dequantized straight to bf16, the matmul in bf16, output in x's dtype.
  q.set_compute_dtype(torch::kBFloat16);
  auto y = q.forward(x);
  auto w16 = quant::dequantize_nf4(q.nf4(), torch::kBFloat16);
  auto bf16_ref = torch::nn::functional::linear(x.to(torch::kBFloat16), w16, b.to(torch::kBFloat16)).to(torch::kFloat32);
  EXPECT_EQ(y.scalar_type(), torch::kFloat32);
  // The matmul ran in bf16: every output value is a bf16 value (an fp32 product would not be),
  // and it is the bf16 reference up to rounding (2^-7 of the largest value: LibTorch may add
  // the bias fused into the product or after it, one bf16 rounding more).
  EXPECT_TRUE(torch::equal(y, y.to(torch::kBFloat16).to(torch::kFloat32)));
  EXPECT_LE(rel_err(y, bf16_ref), 1.0 / 128);
  EXPECT_LE(rel_err(y, fp32_ref), kLogitBudget);
}

TrialSpec tiny_trial(const std::string& method, const std::string& dataset, const std::string& precision) {
  TrialSpec t;
  t.id = method + "-" + dataset + "-" + precision;
  t.model.preset = "tiny";
  t.method.method = method;
  t.method.rank = 4;
  t.method.targets = {"all-linear"};
  if (method == "sparse_lora") {
    t.method.sparsity = 0.5;
    t.method.prune_every = 2;
  }
  if (method == "hira") t.method.hira_scale = 50;
  t.dataset.name = dataset;
  t.dataset.synthetic_train = 128;
  t.dataset.synthetic_eval = 32;
  t.dataset.max_length = 24;
  t.dataset.block_size = 24;
  t.train.max_steps = 6;
  t.train.batch_size = 16;
  t.train.lr = 3e-3;
  t.train.device = "cpu";
  t.train.precision = precision;
  t.train.inference_batch = 16;
  t.train.inference_repeats = 1;
  return t;
}

class Bf16Trial : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(Bf16Trial, TrainsEvaluatesAndMeasuresWithinBudget) {
  const auto& [method, dataset] = GetParam();
  RunContext ctx;
  auto fp32 = run_trial(tiny_trial(method, dataset, "fp32"), ctx);
  auto bf16 = run_trial(tiny_trial(method, dataset, "bf16"), ctx);
  ASSERT_EQ(fp32.status, "complete") << fp32.error;
  ASSERT_EQ(bf16.status, "complete") << bf16.error;
  EXPECT_FALSE(model::autocast_enabled(c10::DeviceType::CPU));
  const double l32 = fp32.metrics.at("eval_loss"), l16 = bf16.metrics.at("eval_loss");
  EXPECT_LE(std::abs(l16 - l32) / l32, kEvalLossBudget) << "fp32 " << l32 << " bf16 " << l16;
  EXPECT_TRUE(std::isfinite(bf16.metrics.at("inference_ms_batch1_unmerged")));
  EXPECT_TRUE(std::isfinite(bf16.metrics.at("inference_samples_per_second_unmerged")));
  // Frozen encoder linears are held in bf16 under bf16 (none are frozen in full fine-tuning).
  if (method == "full") {
    EXPECT_EQ(bf16.metrics.count("bf16_frozen_params"), 1u);
    EXPECT_EQ(bf16.metrics.at("bf16_frozen_params"), 0.0);
  } else if (method != "qlora") {
    EXPECT_GT(bf16.metrics.at("bf16_frozen_params"), 0.0);
  }
  EXPECT_EQ(fp32.metrics.count("bf16_frozen_params"), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    EveryMethodBothHeads, Bf16Trial,
    ::testing::Combine(::testing::Values("lora", "sparse_lora", "hira", "qlora", "full", "head"),
                       ::testing::Values("synthetic_sentiment", "synthetic_mlm")),
    [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

}  // namespace
}  // namespace peft::train
