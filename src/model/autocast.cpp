#include "model/autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace peft::model {
namespace {

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool get_enabled(c10::DeviceType t) { return at::autocast::is_autocast_enabled(t); }
void set_enabled(c10::DeviceType t, bool on) { at::autocast::set_autocast_enabled(t, on); }
c10::ScalarType get_dtype(c10::DeviceType t) { return at::autocast::get_autocast_dtype(t); }
void set_dtype(c10::DeviceType t, c10::ScalarType d) { at::autocast::set_autocast_dtype(t, d); }
#else
bool get_enabled(c10::DeviceType t) {
  return t == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
void set_enabled(c10::DeviceType t, bool on) {
  if (t == c10::DeviceType::CUDA) at::autocast::set_enabled(on);
  else at::autocast::set_cpu_enabled(on);
}
c10::ScalarType get_dtype(c10::DeviceType t) {
  return t == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void set_dtype(c10::DeviceType t, c10::ScalarType d) {
  if (t == c10::DeviceType::CUDA) at::autocast::set_autocast_gpu_dtype(d);
  else at::autocast::set_autocast_cpu_dtype(d);
}
#endif

}  // namespace

bool autocast_enabled(c10::DeviceType type) { return get_enabled(type); }

AutocastGuard::AutocastGuard(const torch::Device& device, bool enabled, c10::ScalarType dtype) {
  if (!enabled) return;
  type_ = device.type();
  prev_enabled_ = get_enabled(type_);
  prev_dtype_ = get_dtype(type_);
  set_dtype(type_, dtype);
  set_enabled(type_, true);
  at::autocast::increment_nesting();
  active_ = true;
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  // As torch.autocast's __exit__: the cache of casted weights lives while any autocast
  // region is open and is dropped when the outermost one closes.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_enabled(type_, prev_enabled_);
  set_dtype(type_, prev_dtype_);
}

AutocastOffGuard::AutocastOffGuard()
    : prev_cpu_(get_enabled(c10::DeviceType::CPU)), prev_cuda_(get_enabled(c10::DeviceType::CUDA)) {
  set_enabled(c10::DeviceType::CPU, false);
  set_enabled(c10::DeviceType::CUDA, false);
}

AutocastOffGuard::~AutocastOffGuard() {
  set_enabled(c10::DeviceType::CPU, prev_cpu_);
  set_enabled(c10::DeviceType::CUDA, prev_cuda_);
}

}  // namespace peft::model
