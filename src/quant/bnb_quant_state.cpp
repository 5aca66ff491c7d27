#include "quant/bnb_quant_state.h"

#include <limits>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace peft::quant {
namespace {

/// A value for an error message: scalars as written, containers by kind only (dumping a
/// value nested thousands of levels deep would recurse as deep), long text cut short.
std::string shown(const nlohmann::json& v) {
  if (v.is_array()) return v.empty() ? "[]" : "a list";
  if (v.is_object()) return v.empty() ? "{}" : "an object";
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

}  // namespace

BnbQuantState parse_bnb_quant_state(std::string_view json_bytes, const std::string& key) {
  nlohmann::json js;
  try {
    js = nlohmann::json::parse(json_bytes.begin(), json_bytes.end());
  } catch (const nlohmann::json::exception& e) {
    throw_input("bitsandbytes state dict: '{}' does not hold valid JSON: {}", key, e.what());
  }
  auto field = [&](const char* name) -> const nlohmann::json& {
    if (!js.is_object() || !js.contains(name))
      throw_input("bitsandbytes state dict: '{}' lacks the field \"{}\"", key, name);
    return js.at(name);
  };
  auto int_field = [&](const char* name) -> int64_t {
    const auto& v = field(name);
    if (!v.is_number_integer() || v.get<int64_t>() <= 0)
      throw_input("bitsandbytes state dict: '{}' field \"{}\" must be a positive integer, got {}",
                  key, name, shown(v));
    return v.get<int64_t>();
  };
  auto str_field = [&](const char* name) -> std::string {
    const auto& v = field(name);
    if (!v.is_string())
      throw_input("bitsandbytes state dict: '{}' field \"{}\" must be a string, got {}", key, name,
                  shown(v));
    return v.get<std::string>();
  };

  BnbQuantState s;
  if (const std::string qt = str_field("quant_type"); qt != "nf4")
    throw_input("bitsandbytes state dict: '{}' has quant_type {}; only nf4 is supported", key,
                shown(nlohmann::json(qt)));
  s.blocksize = int_field("blocksize");
  if (s.blocksize % 2 != 0 || s.blocksize > (1 << 20))
    throw_input("bitsandbytes state dict: '{}' field \"blocksize\" must be even, got {}", key, s.blocksize);
  s.dtype = str_field("dtype");
  if (s.dtype != "float32" && s.dtype != "float16" && s.dtype != "bfloat16")
    throw_input("bitsandbytes state dict: '{}' field \"dtype\" is {}; expected float32, float16 or bfloat16",
                key, shown(nlohmann::json(s.dtype)));
  const auto& shape = field("shape");
  if (!shape.is_array())
    throw_input("bitsandbytes state dict: '{}' field \"shape\" must be a list, got {}", key, shown(shape));
  s.numel = 1;
  for (const auto& d : shape) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0)
      throw_input("bitsandbytes state dict: '{}' field \"shape\" must hold non-negative integers, got {}",
                  key, shown(d));
    const int64_t v = d.get<int64_t>();
    if (v != 0 && s.numel > std::numeric_limits<int64_t>::max() / v)
      throw_input("bitsandbytes state dict: '{}' field \"shape\" has more elements than fit in 64 bits", key);
    s.numel *= v;
    s.shape.push_back(v);
  }
  s.nested_blocksize = int_field("nested_blocksize");
  if (s.nested_blocksize > (1 << 20))
    throw_input("bitsandbytes state dict: '{}' field \"nested_blocksize\" must be at most {}, got {}", key,
                1 << 20, s.nested_blocksize);
  if (const std::string nd = str_field("nested_dtype"); nd != "float32")
    throw_input("bitsandbytes state dict: '{}' field \"nested_dtype\" is {}; expected float32", key,
                shown(nlohmann::json(nd)));
  const auto& off = field("nested_offset");
  if (!off.is_number())
    throw_input("bitsandbytes state dict: '{}' field \"nested_offset\" must be a number, got {}", key, shown(off));
  s.nested_offset = off.get<double>();
  return s;
}

}  // namespace peft::quant
