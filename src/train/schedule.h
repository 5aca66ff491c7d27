#pragma once
// Linear warm-up then linear decay to zero (transformers' get_linear_schedule_with_warmup).
#include <algorithm>
#include <cstdint>

namespace peft::train {

inline double linear_warmup_decay(int64_t step, int64_t warmup_steps, int64_t total_steps) {
  if (step < warmup_steps) return static_cast<double>(step + 1) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  const double remaining = static_cast<double>(total_steps - step);
  const double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  return std::max(0.0, remaining / span);
}

}  // namespace peft::train
