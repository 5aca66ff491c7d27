// bitsandbytes' state-dict layout of a Linear4bit weight with compress_statistics=True, as
// nn/modules.py Linear4bit._save_to_state_dict writes it: `weight` (the packed uint8 codes,
// [ceil(n/2), 1]) and `weight.<k>` for every entry of QuantState.as_dict(packed=True):
// absmax (uint8 codes), quant_map (fp32 16), nested_absmax (fp32), nested_quant_map (fp32 256)
// and quant_state.bitsandbytes__nf4, the non-tensor fields as the UTF-8 bytes of
// json.dumps({quant_type, blocksize, dtype, shape, nested_blocksize, nested_dtype,
// nested_offset}) in a uint8 tensor (utils.py pack_dict_to_tensor).
#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "quant/bnb_quant_state.h"
#include "quant/nf4.h"
#include "quant/nf4_tables.h"

namespace peft::quant {
namespace {

constexpr const char* kQuantStateKey = ".quant_state.bitsandbytes__nf4";

std::string weight_key(const std::string& prefix) {
  return prefix.empty() ? std::string("weight") : prefix + ".weight";
}

// str(torch.<dtype>).strip("torch.") in QuantState.as_dict.
std::string dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return "float32";
    case torch::kFloat16: return "float16";
    case torch::kBFloat16: return "bfloat16";
    default: throw_input("bitsandbytes state dict: unsupported weight dtype {}", c10::toString(t));
  }
}

std::string shape_json(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

}  // namespace

namespace detail {

std::string python_float_repr(double v) {
  if (std::isnan(v)) return "NaN";  // json.dumps' spellings (allow_nan=True)
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  // fmt's shortest round-trip form switches to exponent notation at the same thresholds as
  // Python's repr (exponent < -4 or >= 16); Python adds ".0" to integral values.
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

}  // namespace detail

std::map<std::string, torch::Tensor> to_bnb_state_dict(const NF4Weight& w, const std::string& prefix) {
  const std::string key = weight_key(prefix);
  // Key order and separators of Python's json.dumps with default arguments.
  const std::string json = fmt::format(
      R"({{"quant_type": "nf4", "blocksize": {}, "dtype": "{}", "shape": {}, )"
      R"("nested_blocksize": {}, "nested_dtype": "float32", "nested_offset": {}}})",
      w.blocksize, dtype_name(w.dtype), shape_json(w.shape), w.nested_blocksize,
      detail::python_float_repr(static_cast<double>(w.offset)));
  torch::Tensor packed_state = torch::empty({static_cast<int64_t>(json.size())}, torch::kUInt8);
  std::memcpy(packed_state.data_ptr<uint8_t>(), json.data(), json.size());

  std::map<std::string, torch::Tensor> sd;
  sd[key] = w.packed;
  sd[key + ".absmax"] = w.absmax_q;
  sd[key + ".quant_map"] = w.quant_map.defined()
                               ? w.quant_map
                               : torch::from_blob(const_cast<float*>(kNF4Code.data()), {16},
                                                  torch::kFloat32).clone().to(w.packed.device());
  sd[key + ".nested_absmax"] = w.nested_absmax;
  sd[key + ".nested_quant_map"] = w.nested_quant_map;
  sd[key + kQuantStateKey] = packed_state;
  return sd;
}

NF4Weight from_bnb_state_dict(const std::map<std::string, torch::Tensor>& sd, const std::string& prefix) {
  const std::string base = weight_key(prefix);
  auto get = [&](const std::string& suffix, torch::ScalarType dtype) -> torch::Tensor {
    const std::string key = base + suffix;
    const auto it = sd.find(key);
    if (it == sd.end() || !it->second.defined()) {
      if (suffix == kQuantStateKey && sd.count(base + ".quant_state.bitsandbytes__fp4"))
        throw_input("bitsandbytes state dict: '{}' is FP4-quantized; only NF4 is supported",
                    base + ".quant_state.bitsandbytes__fp4");
      if (suffix == ".nested_absmax" || suffix == ".nested_quant_map")
        throw_input("bitsandbytes state dict: missing key '{}' (only double-quantized weights, "
                    "compress_statistics=True, are supported)", key);
      throw_input("bitsandbytes state dict: missing key '{}'", key);
    }
    if (it->second.scalar_type() != dtype)
      throw_input("bitsandbytes state dict: '{}' must be {}, got {}", key, c10::toString(dtype),
                  c10::toString(it->second.scalar_type()));
    return it->second.contiguous();
  };

  NF4Weight w;
  w.packed = get("", torch::kUInt8);
  w.absmax_q = get(".absmax", torch::kUInt8);
  w.quant_map = get(".quant_map", torch::kFloat32);
  w.nested_absmax = get(".nested_absmax", torch::kFloat32);
  w.nested_quant_map = get(".nested_quant_map", torch::kFloat32);
  const torch::Tensor state = get(kQuantStateKey, torch::kUInt8).to(torch::kCPU);
  const std::string qs_key = base + kQuantStateKey;

  const auto* bytes = reinterpret_cast<const char*>(state.data_ptr<uint8_t>());
  const BnbQuantState qs = parse_bnb_quant_state(std::string_view(bytes, static_cast<std::size_t>(state.numel())), qs_key);
  w.blocksize = static_cast<int>(qs.blocksize);
  w.dtype = qs.dtype == "float32" ? torch::kFloat32 : qs.dtype == "float16" ? torch::kFloat16 : torch::kBFloat16;
  w.shape = qs.shape;
  w.nested_blocksize = static_cast<int>(qs.nested_blocksize);
  w.offset = static_cast<float>(qs.nested_offset);
  const std::string shape = fmt::format("[{}]", fmt::join(qs.shape, ","));  // as json::dump wrote it

  // Sizes must agree with the shape.
  const int64_t n = w.numel();
  if (w.packed.numel() != (n + 1) / 2)
    throw_input("bitsandbytes state dict: '{}' has {} bytes; shape {} needs {}", base,
                w.packed.numel(), shape, (n + 1) / 2);
  if (w.absmax_q.numel() != w.n_blocks())
    throw_input("bitsandbytes state dict: '{}' has {} entries; {} blocks of {} expected",
                base + ".absmax", w.absmax_q.numel(), w.n_blocks(), w.blocksize);
  const int64_t n_nested = (w.n_blocks() + w.nested_blocksize - 1) / w.nested_blocksize;
  if (w.nested_absmax.numel() != n_nested)
    throw_input("bitsandbytes state dict: '{}' has {} entries, expected {}",
                base + ".nested_absmax", w.nested_absmax.numel(), n_nested);
  if (w.nested_quant_map.numel() != 256)
    throw_input("bitsandbytes state dict: '{}' has {} entries, expected 256",
                base + ".nested_quant_map", w.nested_quant_map.numel());
  // Dequantization uses the built-in NF4 table (as bitsandbytes' kernels do), so the stored one
  // must be that table.
  const torch::Tensor qm = w.quant_map.to(torch::kCPU);
  bool is_nf4 = qm.numel() == 16;
  for (int64_t c = 0; is_nf4 && c < 16; ++c) is_nf4 = qm.data_ptr<float>()[c] == kNF4Code[c];
  if (!is_nf4)
    throw_input("bitsandbytes state dict: '{}' is not the NF4 code book", base + ".quant_map");
  const torch::Device device = w.packed.device();
  for (const auto& [name, t] : {std::pair{".absmax", &w.absmax_q}, std::pair{".nested_absmax", &w.nested_absmax},
                                std::pair{".nested_quant_map", &w.nested_quant_map}, std::pair{".quant_map", &w.quant_map}})
    if (t->device() != device)
      throw_input("bitsandbytes state dict: '{}' is on {} but '{}' on {}", base + name,
                  t->device().str(), base, device.str());
  w.packed = w.packed.reshape({(n + 1) / 2, 1});
  return w;
}

}  // namespace peft::quant
