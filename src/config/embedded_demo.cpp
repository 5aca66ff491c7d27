// sweeps/demo.toml compiled in, so `peft-sweep` with no file runs the demo.
#include "config/sweep_spec.h"
#include "peft/demo_sweep.h"

namespace peft {

const std::string& embedded_demo_sweep() {
  static const std::string text = generated::kDemoSweep;
  return text;
}

}  // namespace peft
