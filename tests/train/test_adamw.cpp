// FlatAdamW: PyTorch's AdamW over flat buffers, with device-resident or paged (host) states.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "train/adamw.h"

namespace peft::train {
namespace {

// Three parameter tensors in two groups (the second without weight decay), as flat buffers.
struct Layout {
  std::vector<std::vector<int64_t>> shapes{{5, 7}, {13}, {3, 3, 2}};
  std::vector<AdamWGroup> groups{{0, 35 + 13, 1e-2, 0.1}, {48, 18, 3e-3, 0.0}};
  int64_t total = 66;
};

double max_rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item<double>();
}

// Runs `steps` AdamW steps with gradients drawn from `seed` and a varying schedule factor.
torch::Tensor run_flat(const Layout& s, AdamWOptions o, int steps, torch::Tensor* m = nullptr) {
  torch::manual_seed(7);
  auto params = torch::randn({s.total});
  auto grads = torch::zeros({s.total + 2});  // + the trainer's loss and count slots
  FlatAdamW opt(params, grads, s.groups, o);
  torch::manual_seed(11);
  for (int i = 0; i < steps; ++i) {
    grads.narrow(0, 0, s.total).copy_(torch::randn({s.total}));
    opt.step(1.0 - 0.03 * i);
  }
  if (m) *m = opt.exp_avg().clone();
  return params;
}

TEST(FlatAdamW, MatchesTorchAdamWPerTensor) {
  Layout s;
  AdamWOptions o;
  const int steps = 25;
  auto flat = run_flat(s, o, steps);

  // The same parameters as separate tensors under torch::optim::AdamW.
  torch::manual_seed(7);
  auto init = torch::randn({s.total});
  std::vector<torch::Tensor> ps;
  int64_t off = 0;
  for (const auto& shape : s.shapes) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    ps.push_back(init.narrow(0, off, n).clone().view(shape).requires_grad_(true));
    off += n;
  }
  std::vector<torch::optim::OptimizerParamGroup> gs;
  gs.emplace_back(std::vector<torch::Tensor>{ps[0], ps[1]},
                  std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-2).weight_decay(0.1)));
  gs.emplace_back(std::vector<torch::Tensor>{ps[2]},
                  std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(3e-3).weight_decay(0.0)));
  torch::optim::AdamW ref(gs, torch::optim::AdamWOptions(1e-3));
  torch::manual_seed(11);
  for (int i = 0; i < steps; ++i) {
    auto g = torch::randn({s.total});
    off = 0;
    for (auto& p : ps) {
      p.mutable_grad() = g.narrow(0, off, p.numel()).view(p.sizes()).clone();
      off += p.numel();
    }
    const double f = 1.0 - 0.03 * i;
    static_cast<torch::optim::AdamWOptions&>(ref.param_groups()[0].options()).lr(1e-2 * f);
    static_cast<torch::optim::AdamWOptions&>(ref.param_groups()[1].options()).lr(3e-3 * f);
    ref.step();
  }
  std::vector<torch::Tensor> flat_ref;
  for (auto& p : ps) flat_ref.push_back(p.detach().reshape({-1}));
  auto expected = torch::cat(flat_ref);
  EXPECT_LE(max_rel_diff(flat, expected), 1e-6);
  // The parameters moved (the test would pass trivially otherwise).
  torch::manual_seed(7);
  EXPECT_GT((flat - torch::randn({s.total})).abs().max().item<double>(), 0.05);
}

TEST(FlatAdamW, PagedStatesGiveTheSameUpdate) {
  Layout s;
  AdamWOptions device_states;
  torch::Tensor m_dev, m_paged;
  auto a = run_flat(s, device_states, 20, &m_dev);
  for (int64_t chunk : {1, 4, 7, 48, 1000}) {  // chunks that split groups unevenly, and whole groups
    AdamWOptions paged;
    paged.paged = true;
    paged.chunk = chunk;
    auto b = run_flat(s, paged, 20, &m_paged);
    // Element-wise, so chunking and staging change no bit.
    EXPECT_TRUE(torch::equal(b, a)) << "chunk " << chunk << ": " << max_rel_diff(b, a);
    EXPECT_TRUE(torch::equal(m_paged, m_dev)) << "chunk " << chunk;
  }
}

TEST(FlatAdamW, PagedKeepsStatesOffTheDevice) {
  Layout s;
  auto params = torch::zeros({s.total}), grads = torch::zeros({s.total});
  AdamWOptions o;
  o.chunk = 8;
  FlatAdamW resident(params, grads, s.groups, o);
  EXPECT_EQ(resident.device_bytes(), 4 * (2 * 66 + 8));  // m, v and one chunk of scratch
  EXPECT_EQ(resident.host_bytes(), 0);
  o.paged = true;
  FlatAdamW paged(params, grads, s.groups, o);
  EXPECT_EQ(paged.device_bytes(), 4 * 3 * 8);  // two staging chunks and the scratch
  EXPECT_EQ(paged.host_bytes(), 4 * 2 * 66);
  o.chunk = 1 << 20;  // larger than every group: buffers shrink to the largest group
  FlatAdamW big(params, grads, s.groups, o);
  EXPECT_EQ(big.device_bytes(), 4 * 3 * 48);
}

TEST(FlatAdamW, DecoupledWeightDecayAndUntouchedGaps) {
  // Zero gradients: the update is the decay alone, p *= 1 - lr·wd, and only inside groups.
  auto params = torch::ones({10}), grads = torch::zeros({10});
  FlatAdamW opt(params, grads, {{0, 4, 0.1, 0.5}, {6, 2, 0.1, 0.0}});
  opt.step(1.0);
  EXPECT_FLOAT_EQ(params[0].item<float>(), 0.95f);
  EXPECT_FLOAT_EQ(params[3].item<float>(), 0.95f);
  EXPECT_FLOAT_EQ(params[4].item<float>(), 1.0f);  // in no group
  EXPECT_FLOAT_EQ(params[6].item<float>(), 1.0f);  // no decay, zero gradient
  EXPECT_FLOAT_EQ(params[9].item<float>(), 1.0f);
  EXPECT_EQ(opt.steps(), 1);
}

TEST(FlatAdamW, RefusesRangesOutsideTheBuffers) {
  auto params = torch::zeros({10}), grads = torch::zeros({10});
  EXPECT_THROW(FlatAdamW(params, grads, {{4, 7, 1e-3, 0.0}}), std::exception);
  EXPECT_THROW(FlatAdamW(params.view({2, 5}), grads, {{0, 4, 1e-3, 0.0}}), std::exception);
  EXPECT_THROW(FlatAdamW(params.to(torch::kDouble), grads, {{0, 4, 1e-3, 0.0}}), std::exception);
}

}  // namespace
}  // namespace peft::train
