#pragma once
// Two-way switches read from the environment (PEFT_MALLOC, PEFT_CPU_KERNELS): a default, one
// alternative, and an error naming the variable for anything else.

namespace peft {

/// `value` is the variable's value (nullptr when unset): true for unset or `on`, false for `off`;
/// anything else throws std::invalid_argument: environment variable NAME="value": expected
/// "on" (the default: on_means) or "off" (off_means).
bool env_switch(const char* name, const char* value, const char* on, const char* on_means, const char* off, const char* off_means);

}  // namespace peft
