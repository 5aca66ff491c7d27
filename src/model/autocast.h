#pragma once
// Mixed precision through LibTorch's autocast, entered and left only through a scoped guard:
// an exception thrown inside a forward pass leaves autocast as it found it, so one failed
// trial cannot leave bf16 on for the trials after it. The one place that knows the two
// autocast APIs (LibTorch >= 2.4: per-device-type calls; 1.13: cpu/gpu-named calls).
#include <torch/types.h>

namespace peft::model {

class AutocastGuard {
 public:
  /// Autocast to `dtype` on `device`'s type when `enabled`; a no-op guard otherwise.
  AutocastGuard(const torch::Device& device, bool enabled, c10::ScalarType dtype = torch::kBFloat16);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType type_ = c10::DeviceType::CPU;
  bool prev_enabled_ = false;
  c10::ScalarType prev_dtype_ = torch::kBFloat16;
};

/// Autocast off on the CPU and on CUDA for a scope, as it was again after: weight arithmetic
/// (merging an adapter into its base weight, taking it out again) done in the weights' own
/// dtype inside a bf16 region, where autocast would round B·A to bf16 first.
class AutocastOffGuard {
 public:
  AutocastOffGuard();
  ~AutocastOffGuard();
  AutocastOffGuard(const AutocastOffGuard&) = delete;
  AutocastOffGuard& operator=(const AutocastOffGuard&) = delete;

 private:
  bool prev_cpu_ = false;
  bool prev_cuda_ = false;
};

/// Whether autocast is on for `type` now (tests: it must be off after a failed forward).
bool autocast_enabled(c10::DeviceType type);

}  // namespace peft::model
