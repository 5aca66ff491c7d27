#include "core/env_switch.h"

#include <stdexcept>
#include <string>

namespace peft {

bool env_switch(const char* name, const char* value, const char* on, const char* on_means, const char* off, const char* off_means) {
  const std::string mode = value ? value : on;
  if (mode != on && mode != off)
    throw std::invalid_argument(std::string("environment variable ") + name + "=\"" + mode + "\": expected \"" + on +
                                "\" (the default: " + on_means + ") or \"" + off + "\" (" + off_means + ")");
  return mode == on;
}

}  // namespace peft
