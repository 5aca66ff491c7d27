#include "model/cpu_kernels.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace peft::model {

bool cpu_kernels_wanted(const char* value) {
  const std::string mode = value ? value : "peft";
  if (mode != "peft" && mode != "torch")
    throw std::invalid_argument("environment variable PEFT_CPU_KERNELS=\"" + mode +
                                "\": expected \"peft\" (the default: peft-sweep's CPU kernels) or \"torch\" (LibTorch's ops)");
  return mode == "peft";
}

bool own_cpu_kernels() {
  // A function-local static: the first call reads the variable (a bad value throws from there,
  // and the next call reads it again).
  static const bool own = cpu_kernels_wanted(std::getenv("PEFT_CPU_KERNELS"));
  return own;
}

}  // namespace peft::model
