#include "model/cpu_kernels.h"

#include <cstdlib>

#include "core/env_switch.h"

namespace peft::model {

bool cpu_kernels_wanted(const char* value) {
  return env_switch("PEFT_CPU_KERNELS", value, "peft", "peft-sweep's CPU kernels", "torch", "LibTorch's ops");
}

bool own_cpu_kernels() {
  // A function-local static: the first call reads the variable (a bad value throws from there,
  // and the next call reads it again).
  static const bool own = cpu_kernels_wanted(std::getenv("PEFT_CPU_KERNELS"));
  return own;
}

}  // namespace peft::model
