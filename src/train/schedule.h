#pragma once
// Linear warm-up then linear decay to zero: exactly transformers' get_linear_schedule_with_warmup
// (optimization.py, _get_linear_schedule_with_warmup_lr_lambda). The factor of optimizer step
// `step` (0-based) is
//   step / max(1, warmup)                                  while step < warmup,
//   max(0, (total - step) / max(1, total - warmup))        after,
// so, as with HF's Trainer (which calls scheduler.step() after optimizer.step()), the first
// update of a run with warm-up uses learning rate 0: it only fills AdamW's moments.
// The trainer sets warmup = ceil(warmup_ratio * total), as TrainingArguments.get_warmup_steps.
#include <algorithm>
#include <cstdint>

namespace peft::train {

inline double linear_warmup_decay(int64_t step, int64_t warmup_steps, int64_t total_steps) {
  if (step < warmup_steps) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  const double remaining = static_cast<double>(total_steps - step);
  const double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  return std::max(0.0, remaining / span);
}

}  // namespace peft::train
