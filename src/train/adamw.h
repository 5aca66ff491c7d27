#pragma once
// AdamW over flat buffers: every trainable parameter is a view into one fp32 buffer and every
// gradient a view into another (the trainer sets that up), and parameter groups are contiguous
// ranges of them. One step is then a handful of element-wise kernels per group instead of a
// dozen per parameter tensor, and the update is PyTorch's AdamW (torch.optim.AdamW,
// amsgrad=False, decoupled weight decay) operation for operation.
//
// States (exp_avg, exp_avg_sq) live either on the parameters' device, or — paged — in host
// memory (pinned on a GPU), streamed through a fixed device staging buffer of `chunk` elements
// per state every step: device memory for the states drops from 8 bytes per trainable
// parameter to 8 bytes per chunk element, for 16 bytes per parameter of host<->device traffic
// per step. It saves device memory only when the trainable parameters outnumber the chunk.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

namespace peft::train {

struct AdamWGroup {
  int64_t offset = 0, numel = 0;  // range of the flat buffers
  double lr = 1e-3, weight_decay = 0.0;
};

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool paged = false;
  /// Elements per state and chunk: the size of the device staging buffers when paged, and
  /// of the scratch buffer of the update either way (at most the largest group).
  int64_t chunk = int64_t{1} << 20;
};

class FlatAdamW {
 public:
  /// `params` and `grads`: 1-D fp32 buffers on one device, at least as long as every group's
  /// range; `grads` may be longer (the trainer keeps loss and count slots after them).
  FlatAdamW(torch::Tensor params, torch::Tensor grads, std::vector<AdamWGroup> groups, AdamWOptions options = {});

  /// One update with every group's learning rate multiplied by `lr_factor` (the schedule).
  void step(double lr_factor);

  int64_t steps() const { return step_; }
  const AdamWOptions& options() const { return options_; }
  /// Bytes of optimizer state and scratch held on the parameters' device / in host memory.
  int64_t device_bytes() const;
  int64_t host_bytes() const;
  /// The states over the whole flat range (on the device, or in host memory when paged).
  const torch::Tensor& exp_avg() const { return exp_avg_; }
  const torch::Tensor& exp_avg_sq() const { return exp_avg_sq_; }
  /// Continues from saved states (a mid-trial checkpoint): copies them in, sets the step count.
  void restore(const torch::Tensor& exp_avg, const torch::Tensor& exp_avg_sq, int64_t steps);
  /// A 0/1 mask over the flat range (on the parameters' device): the states of masked
  /// elements are zeroed in every update, so they get no update (pruned weights stay 0).
  void set_state_mask(torch::Tensor mask);

 private:
  void update(const AdamWGroup& g, int64_t begin, int64_t len, double lr, double bias_correction1,
              double bias_correction2, torch::Tensor m, torch::Tensor v);

  torch::Tensor params_, grads_;
  std::vector<AdamWGroup> groups_;
  AdamWOptions options_;
  int64_t step_ = 0;
  torch::Tensor exp_avg_, exp_avg_sq_;     // whole range: device, or host when paged
  torch::Tensor stage_m_, stage_v_;        // paged: device staging of one chunk
  torch::Tensor denom_;                    // scratch of one chunk (device)
  torch::Tensor state_mask_;               // optional, over the whole range (device)
};

}  // namespace peft::train
