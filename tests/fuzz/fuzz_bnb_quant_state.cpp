// bitsandbytes' quant-state JSON (weight.quant_state.bitsandbytes__nf4).
#include "fuzz_util.h"
#include "quant/bnb_quant_state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  peft::fuzz::refuse_ok([&] {
    const auto s = peft::quant::parse_bnb_quant_state(bytes, "lin.weight.quant_state.bitsandbytes__nf4");
    if (s.blocksize <= 0 || s.blocksize % 2 != 0 || s.nested_blocksize <= 0 || s.numel < 0) std::abort();
    // What from_bnb_state_dict derives from it must not overflow.
    const int64_t blocks = (s.numel + s.blocksize - 1) / s.blocksize;
    const int64_t nested = (blocks + s.nested_blocksize - 1) / s.nested_blocksize;
    const int64_t packed = (s.numel + 1) / 2;
    volatile int64_t sink = blocks + nested + packed;
    (void)sink;
  });
  return 0;
}
