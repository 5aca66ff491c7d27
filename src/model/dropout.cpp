#include "model/dropout.h"

#include <mutex>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/autograd.h>
#include <torch/nn/functional/dropout.h>

#include "core/error.h"

namespace peft::model {
namespace {

/// The next 64 bits of LibTorch's default CPU generator: one call's seed.
uint64_t next_seed() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return at::check_generator<at::CPUGeneratorImpl>(gen)->random64();
}

/// y = x ⊙ mask / (1 - p), the mask a function of (seed, element index); backward applies the
/// same mask to the gradient, recomputed from the seed instead of saved.
class CpuDropout : public torch::autograd::Function<CpuDropout> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, double p, int64_t seed) {
    ctx->saved_data["p"] = p;
    ctx->saved_data["seed"] = seed;
    const torch::Tensor xc = x.contiguous();
    torch::Tensor out = torch::empty_like(xc);
    dropout_mask_apply_cpu(xc, out, p, static_cast<uint64_t>(seed));
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list grads) {
    const torch::Tensor g = grads[0].contiguous();
    torch::Tensor out = torch::empty_like(g);
    dropout_mask_apply_cpu(g, out, ctx->saved_data["p"].toDouble(), static_cast<uint64_t>(ctx->saved_data["seed"].toInt()));
    return {out, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor dropout(const torch::Tensor& x, double p, bool training) {
  PEFT_CHECK(p >= 0.0 && p <= 1.0, "dropout probability {} outside [0, 1]", p);
  if (!training || p == 0.0) return x;
  if (!x.device().is_cpu()) return torch::dropout(x, p, /*train=*/true);  // CUDA: torch's fused kernel
  if (p == 1.0) return x * 0;                                              // as torch: zeros, gradient zero
  return CpuDropout::apply(x, p, static_cast<int64_t>(next_seed()));
}

}  // namespace peft::model
