#include "core/memory.h"

#include <fstream>
#include <string>

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

}  // namespace peft
