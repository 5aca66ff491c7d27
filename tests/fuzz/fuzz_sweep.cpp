// The sweep file: TOML parsing, validation, and grid expansion of what validates.
#include "config/sweep_spec.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  peft::fuzz::refuse_ok([&] {
    // check_paths = false: the folders named in a fuzzed file do not exist (--dry-run mode).
    const peft::SweepSpec spec = peft::parse_sweep_string(text, "fuzz.toml", false);
    std::size_t trials = 0;
    for (const peft::TrialSpec& t : peft::expand(spec)) trials += !t.id.empty();
    if (trials == 0) std::abort();  // a valid sweep has at least one trial
  });
  return 0;
}
