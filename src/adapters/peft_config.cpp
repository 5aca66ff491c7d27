#include "adapters/peft_config.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_excerpt.h"

namespace peft::adapters {
using json = nlohmann::json;

namespace {

std::string type_name(const json& v) { return v.type_name(); }

/// Reads optional keys with type checks; every error names the origin and the key.
class Reader {
 public:
  Reader(const json& j, std::string origin) : j_(j), origin_(std::move(origin)) {}

  const json* get(const std::string& key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw_input("{}: \"{}\" {}", origin_, key, what);
  }
  std::optional<std::string> str(const std::string& key) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) fail(key, "must be a string, got " + type_name(*v));
    return v->get<std::string>();
  }
  std::optional<double> number(const std::string& key) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) fail(key, "must be a number, got " + type_name(*v));
    return v->get<double>();
  }
  std::optional<int64_t> integer(const std::string& key) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_number_integer()) fail(key, "must be an integer, got " + json_excerpt(*v));
    return v->get<int64_t>();
  }
  std::optional<bool> boolean(const std::string& key) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) fail(key, "must be true or false, got " + json_excerpt(*v));
    return v->get<bool>();
  }
  std::optional<std::vector<std::string>> strings(const std::string& key) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_array()) fail(key, "must be a list of strings, got " + type_name(*v));
    std::vector<std::string> out;
    for (const auto& e : *v) {
      if (!e.is_string()) fail(key, "must be a list of strings, found " + json_excerpt(e));
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  /// Options that change what the adapter computes: refused unless at PEFT's default.
  void refuse_unless_default(const std::string& key, const json& default_value, const std::string& why) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null() || *it == default_value) return;
    fail(key, fmt::format("= {} is not supported here ({}); only {} is", json_excerpt(*it), why, json_excerpt(default_value)));
  }

 private:
  const json& j_;
  std::string origin_;
};

json number_json(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::abs(v) < 1e15) return json(static_cast<int64_t>(v));
  return json(v);
}

json targets_json(const TargetSpec& t) {
  switch (t.kind) {
    case TargetSpec::Kind::Names: return json(t.names);
    case TargetSpec::Kind::Regex: return json(t.regex);
    case TargetSpec::Kind::AllLinear: return json("all-linear");
  }
  return json();
}

template <typename T>
json optional_json(const std::optional<T>& v) {
  return v ? json(*v) : json();
}

}  // namespace

constexpr std::size_t kMaxTargetRegex = 1024;

PeftAdapterConfig PeftAdapterConfig::from_json_string(const std::string& text, const std::string& origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number such as 1e99999
    throw_input("{}: not valid JSON: {}", origin, e.what());
  }
  if (!j.is_object()) throw_input("{}: expected a JSON object", origin);
  Reader rd(j, origin);

  PeftAdapterConfig c;
  auto type = rd.str("peft_type");
  if (!type) throw_input("{}: \"peft_type\" is missing", origin);
  if (*type != "LORA" && *type != "HIRA")
    throw_input("{}: peft_type \"{}\" is not supported (this build reads LORA and HIRA adapters)", origin, *type);
  c.peft_type = *type;
  const bool lora = c.peft_type == "LORA";
  c.task_type = rd.str("task_type");
  c.base_model_name_or_path = rd.str("base_model_name_or_path");
  c.peft_version = rd.str("peft_version");
  c.inference_mode = rd.boolean("inference_mode").value_or(true);

  c.r = rd.integer("r").value_or(lora ? 8 : 32);  // PEFT's defaults
  if (c.r < 1) rd.fail("r", fmt::format("must be >= 1, got {}", c.r));
  const std::string dropout_key = lora ? "lora_dropout" : "hira_dropout";
  c.dropout = rd.number(dropout_key).value_or(0.0);
  if (!(c.dropout >= 0.0 && c.dropout < 1.0)) rd.fail(dropout_key, fmt::format("must be in [0, 1), got {}", c.dropout));
  if (lora) {
    c.lora_alpha = rd.number("lora_alpha").value_or(8.0);
    if (!(c.lora_alpha > 0.0)) rd.fail("lora_alpha", fmt::format("must be > 0, got {}", c.lora_alpha));
    c.use_rslora = rd.boolean("use_rslora").value_or(false);
  }

  const json* tm = rd.get("target_modules");
  if (!tm) rd.fail("target_modules", "is missing (PEFT writes the resolved target modules)");
  if (tm->is_string()) {
    const auto s = tm->get<std::string>();
    // std::regex compiles recursively, one level per nesting of the pattern: bound what it
    // reads (PEFT's patterns are a few dozen characters).
    if (s.size() > kMaxTargetRegex)
      rd.fail("target_modules", fmt::format("is a regular expression of {} characters; at most {} are accepted",
                                            s.size(), kMaxTargetRegex));
    c.targets = s == "all-linear" ? TargetSpec::all_linear() : TargetSpec::from_regex(s);
  } else {
    c.targets = TargetSpec::from_names(*rd.strings("target_modules"));
  }
  if (const json* layers = rd.get("layers_to_transform")) {
    if (layers->is_number_integer()) {
      c.targets.layers = {layers->get<int64_t>()};
    } else if (layers->is_array()) {
      for (const auto& e : *layers) {
        if (!e.is_number_integer()) rd.fail("layers_to_transform", "must be an integer or a list of integers, found " + json_excerpt(e));
        c.targets.layers.push_back(e.get<int64_t>());
      }
    } else {
      rd.fail("layers_to_transform", "must be an integer or a list of integers, got " + type_name(*layers));
    }
  }
  try {
    c.targets.validate();
  } catch (const InputError& e) {
    throw_input("{}: {}", origin, e.what());
  }
  c.modules_to_save = rd.strings("modules_to_save");

  // Options that would change the computation: refuse rather than compute something else.
  rd.refuse_unless_default("fan_in_fan_out", false, "DistilBERT stores weights as [out, in]");
  rd.refuse_unless_default("exclude_modules", json(), "not implemented");
  rd.refuse_unless_default("layer_replication", json(), "not implemented");
  if (const json* lp = rd.get("layers_pattern"); lp && *lp != json("layer") && *lp != json::array({"layer"}))
    rd.fail("layers_pattern", "= " + json_excerpt(*lp) + " does not name DistilBERT's layer list (\"layer\")");
  if (lora) {
    rd.refuse_unless_default("bias", "none", "only bias \"none\" is implemented");
    rd.refuse_unless_default("use_dora", false, "DoRA is not implemented");
    rd.refuse_unless_default("rank_pattern", json::object(), "per-module ranks are not implemented");
    rd.refuse_unless_default("alpha_pattern", json::object(), "per-module alphas are not implemented");
    rd.refuse_unless_default("use_qalora", false, "QA-LoRA is not implemented");
    rd.refuse_unless_default("lora_bias", false, "LoRA bias terms are not implemented");
    rd.refuse_unless_default("trainable_token_indices", json(), "not implemented");
    rd.refuse_unless_default("target_parameters", json(), "not implemented");
    rd.refuse_unless_default("alora_invocation_tokens", json(), "aLoRA is not implemented");
  } else {
    rd.refuse_unless_default("r_pattern", json::object(), "per-module ranks are not implemented");
    rd.refuse_unless_default("rank_pattern", json::object(), "per-module ranks are not implemented");
  }
  return c;
}

PeftAdapterConfig PeftAdapterConfig::from_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input("{}: cannot open the adapter config", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return from_json_string(ss.str(), path);
}

std::string PeftAdapterConfig::to_json_string() const {
  json j;
  j["auto_mapping"] = nullptr;
  j["base_model_name_or_path"] = optional_json(base_model_name_or_path);
  j["exclude_modules"] = nullptr;
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = inference_mode;
  j["layer_replication"] = nullptr;
  j["layers_pattern"] = nullptr;
  j["layers_to_transform"] = targets.layers.empty() ? json() : json(targets.layers);
  j["modules_to_save"] = optional_json(modules_to_save);
  j["peft_type"] = peft_type;
  j["peft_version"] = optional_json(peft_version);
  j["r"] = r;
  j["revision"] = nullptr;
  j["target_modules"] = targets_json(targets);
  j["task_type"] = optional_json(task_type);
  if (peft_type == "LORA") {
    // LoraConfig of PEFT 0.18, as its save_pretrained writes it.
    j["alora_invocation_tokens"] = nullptr;
    j["alpha_pattern"] = json::object();
    j["arrow_config"] = nullptr;
    j["bias"] = "none";
    j["corda_config"] = nullptr;
    j["ensure_weight_tying"] = false;
    j["eva_config"] = nullptr;
    j["init_lora_weights"] = true;
    j["loftq_config"] = json::object();
    j["lora_alpha"] = number_json(lora_alpha);
    j["lora_bias"] = false;
    j["lora_dropout"] = dropout;
    j["megatron_config"] = nullptr;
    j["megatron_core"] = "megatron.core";
    j["qalora_group_size"] = 16;
    j["rank_pattern"] = json::object();
    j["target_parameters"] = nullptr;
    j["trainable_token_indices"] = nullptr;
    j["use_dora"] = false;
    j["use_qalora"] = false;
    j["use_rslora"] = use_rslora;
  } else {
    // HiraConfig (peft/tuners/hira/config.py).
    j["hira_dropout"] = dropout;
    j["init_hira_weights"] = true;
    j["init_weights"] = true;
    j["r_pattern"] = json::object();
  }
  return j.dump(2);
}

bool PeftAdapterConfig::accepts_kind(const std::string& kind) const {
  return peft_type == "HIRA" ? kind == "hira" : (kind == "lora" || kind == "sparse_lora");
}

bool PeftAdapterConfig::saves_module(const std::string& module) const {
  if (!modules_to_save) return false;
  for (const auto& m : *modules_to_save)
    if (module.ends_with(m)) return true;  // PEFT's _set_trainable: key.endswith(target_key)
  return false;
}

}  // namespace peft::adapters
