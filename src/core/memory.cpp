#include "core/memory.h"

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>

#include "core/env_switch.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace peft {
namespace {

int64_t status_field_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(key.size())) * 1024;
  return 0;
}

}  // namespace

int64_t peak_rss_bytes() { return status_field_kb("VmHWM"); }
int64_t current_rss_bytes() { return status_field_kb("VmRSS"); }

bool reset_peak_rss() {
#if defined(__GLIBC__)
  // glibc keeps freed heap memory mapped (its mmap threshold grows to the largest chunk freed),
  // so in a process that runs trial after trial the RSS stays at the largest earlier trial's
  // peak and every later trial would report at least that. Hand free pages back first, so the
  // reset starts from what is live.
  malloc_trim(0);
#endif
  std::ofstream out("/proc/self/clear_refs");
  if (!out) return false;
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

bool heap_tuning_wanted(const char* value) {
  return env_switch("PEFT_MALLOC", value, "tuned", "no mmap for large blocks, 1 GiB trim threshold", "system", "glibc's malloc defaults");
}

bool tune_heap_for_steps() {
  static bool tuned = false;
  static std::once_flag once;
  std::call_once(once, [] {
    if (!heap_tuning_wanted(std::getenv("PEFT_MALLOC"))) return;
#if defined(__GLIBC__)
    // No mmap for large blocks: from the heap, a freed block is reused by the next step as it is.
    // (A thread arena that cannot grow still falls back to mmap; glibc does that itself.)
    // Freed memory at the heap top stays mapped up to 1 GiB; reset_peak_rss trims it between trials.
    tuned = mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
#endif
  });
  return tuned;
}

}  // namespace peft
