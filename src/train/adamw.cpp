#include "train/adamw.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "core/error.h"

namespace peft::train {

FlatAdamW::FlatAdamW(torch::Tensor params, torch::Tensor grads, std::vector<AdamWGroup> groups, AdamWOptions options)
    : params_(std::move(params)), grads_(std::move(grads)), groups_(std::move(groups)), options_(options) {
  PEFT_CHECK(params_.dim() == 1 && grads_.dim() == 1 && params_.is_contiguous() && grads_.is_contiguous(),
             "FlatAdamW needs contiguous 1-D parameter and gradient buffers");
  PEFT_CHECK(params_.scalar_type() == torch::kFloat32 && grads_.scalar_type() == torch::kFloat32,
             "FlatAdamW needs fp32 buffers");
  PEFT_CHECK(params_.device() == grads_.device(), "parameters and gradients on different devices");
  PEFT_CHECK(options_.chunk >= 1, "FlatAdamW chunk must be positive");
  int64_t end = 0, largest = 0;
  for (const auto& g : groups_) {
    PEFT_CHECK(g.offset >= 0 && g.numel >= 0 && g.offset + g.numel <= params_.numel() && g.offset + g.numel <= grads_.numel(),
               "FlatAdamW group [{}, {}) outside the buffers", g.offset, g.offset + g.numel);
    end = std::max(end, g.offset + g.numel);
    largest = std::max(largest, g.numel);
  }
  const auto device = params_.options();
  const int64_t chunk = std::max<int64_t>(1, std::min(options_.chunk, largest));
  if (options_.paged) {
    auto host = torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(params_.is_cuda());
    exp_avg_ = torch::zeros({end}, host);
    exp_avg_sq_ = torch::zeros({end}, host);
    stage_m_ = torch::empty({chunk}, device);
    stage_v_ = torch::empty({chunk}, device);
  } else {
    exp_avg_ = torch::zeros({end}, device);
    exp_avg_sq_ = torch::zeros({end}, device);
  }
  denom_ = torch::empty({chunk}, device);
}

int64_t FlatAdamW::device_bytes() const {
  const int64_t states = options_.paged ? stage_m_.numel() + stage_v_.numel() : exp_avg_.numel() + exp_avg_sq_.numel();
  return 4 * (states + denom_.numel());
}

int64_t FlatAdamW::host_bytes() const { return options_.paged ? 4 * (exp_avg_.numel() + exp_avg_sq_.numel()) : 0; }

void FlatAdamW::update(const AdamWGroup& g, int64_t begin, int64_t len, double lr, double bias_correction1,
                       double bias_correction2, torch::Tensor m, torch::Tensor v) {
  auto p = params_.narrow(0, begin, len);
  auto grad = grads_.narrow(0, begin, len);
  const double b1 = options_.beta1, b2 = options_.beta2;
  // torch.optim.AdamW (amsgrad=False), in its order of operations.
  if (g.weight_decay != 0) p.mul_(1 - lr * g.weight_decay);
  m.mul_(b1).add_(grad, 1 - b1);
  v.mul_(b2).addcmul_(grad, grad, 1 - b2);
  if (state_mask_.defined()) {
    auto mask = state_mask_.narrow(0, begin, len);
    m.mul_(mask);
    v.mul_(mask);
  }
  auto denom = denom_.narrow(0, 0, len);
  torch::sqrt_out(denom, v);
  denom.div_(std::sqrt(bias_correction2)).add_(options_.eps);
  p.addcdiv_(m, denom, -lr / bias_correction1);
}

void FlatAdamW::restore(const torch::Tensor& exp_avg, const torch::Tensor& exp_avg_sq, int64_t steps) {
  PEFT_CHECK(exp_avg.numel() == exp_avg_.numel() && exp_avg_sq.numel() == exp_avg_sq_.numel() && steps >= 0,
             "FlatAdamW::restore: states of {} / {} elements, expected {}", exp_avg.numel(), exp_avg_sq.numel(), exp_avg_.numel());
  torch::NoGradGuard no_grad;
  exp_avg_.copy_(exp_avg.reshape({-1}));
  exp_avg_sq_.copy_(exp_avg_sq.reshape({-1}));
  step_ = steps;
}

void FlatAdamW::set_state_mask(torch::Tensor mask) {
  PEFT_CHECK(mask.dim() == 1 && mask.numel() >= exp_avg_.numel() && mask.device() == params_.device() &&
                 mask.scalar_type() == torch::kFloat32,
             "FlatAdamW state mask: a 1-D fp32 tensor over the flat range on the parameters' device");
  state_mask_ = std::move(mask);
}

void FlatAdamW::step(double lr_factor) {
  ++step_;
  const double bc1 = 1 - std::pow(options_.beta1, static_cast<double>(step_));
  const double bc2 = 1 - std::pow(options_.beta2, static_cast<double>(step_));
  const int64_t chunk = denom_.numel();
  for (const auto& g : groups_) {
    const double lr = g.lr * lr_factor;
    for (int64_t begin = g.offset; begin < g.offset + g.numel; begin += chunk) {
      const int64_t len = std::min(chunk, g.offset + g.numel - begin);
      auto m = exp_avg_.narrow(0, begin, len), v = exp_avg_sq_.narrow(0, begin, len);
      if (!options_.paged) {
        update(g, begin, len, lr, bc1, bc2, m, v);
        continue;
      }
      // Paged: host -> staging, update on the device, staging -> host. All on the current
      // stream, so the next chunk's upload is ordered after this chunk's download; the host
      // copies are only ever read by these stream-ordered transfers.
      auto sm = stage_m_.narrow(0, 0, len), sv = stage_v_.narrow(0, 0, len);
      sm.copy_(m, /*non_blocking=*/true);
      sv.copy_(v, /*non_blocking=*/true);
      update(g, begin, len, lr, bc1, bc2, sm, sv);
      m.copy_(sm, /*non_blocking=*/true);
      v.copy_(sv, /*non_blocking=*/true);
    }
  }
}

}  // namespace peft::train
