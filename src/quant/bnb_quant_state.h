#pragma once
// The JSON of bitsandbytes' `weight.quant_state.bitsandbytes__nf4` entry (the non-tensor
// fields of QuantState.as_dict(packed=True), json.dumps'd into a uint8 tensor): parsed and
// checked here without LibTorch, so that the parser can be fuzzed on its own.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace peft::quant {

struct BnbQuantState {
  int64_t blocksize = 0;         // positive, even, at most 2^20
  std::string dtype;             // "float32" | "float16" | "bfloat16"
  std::vector<int64_t> shape;    // non-negative; the product fits in int64
  int64_t numel = 0;             // product of shape
  int64_t nested_blocksize = 0;  // positive
  double nested_offset = 0;
};

/// Parses and checks the JSON bytes; throws peft::InputError naming `key` (the state dict
/// entry) and the field.
BnbQuantState parse_bnb_quant_state(std::string_view json_bytes, const std::string& key);

}  // namespace peft::quant
