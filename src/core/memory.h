#pragma once
// Process memory probes (Linux /proc): resident-set high-water mark, resettable per trial.
#include <cstdint>

namespace peft {

/// VmHWM of this process in bytes (0 when /proc is unavailable).
int64_t peak_rss_bytes();
/// Current VmRSS in bytes.
int64_t current_rss_bytes();
/// Returns free heap pages to the kernel (glibc malloc_trim), then resets the high-water mark
/// to the current RSS (writes 5 to /proc/self/clear_refs);
/// returns false where the kernel does not allow it (then the peak is since process start).
bool reset_peak_rss();

}  // namespace peft
