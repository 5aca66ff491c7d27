#pragma once
// adapter_config.json in the layout HF PEFT 0.18 writes (LoraConfig / HiraConfig as dicts,
// keys sorted, indent 2, no trailing newline), so files written here load in PEFT and a file
// PEFT wrote reads back here and re-emits byte for byte.
//
// What is modelled: peft_type LORA or HIRA, task_type, base_model_name_or_path, r, lora_alpha,
// lora_dropout / hira_dropout, use_rslora, target_modules (list or regex string),
// layers_to_transform, modules_to_save, inference_mode, peft_version. Every other PEFT key is
// written with PEFT's default; on reading, a non-default value of an option that changes what
// the adapter computes (use_dora, bias, fan_in_fan_out, rank/alpha patterns, exclude_modules,
// layers_pattern, layer_replication, …) is refused by name rather than silently ignored, and
// keys PEFT would not write for that type are ignored.
//
// Torch-free (the fuzz harness builds it alone, with target_spec.cpp): from_method, which needs
// the method settings and the model's heads, is in peft_config_method.cpp.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "adapters/target_spec.h"
#include "model/config.h"  // model::Family

namespace peft::model {
enum class Head;  // model/distilbert.h
}

namespace peft::adapters {

struct MethodConfig;  // adapters/method.h

struct PeftAdapterConfig {
  std::string peft_type = "LORA";  // "LORA" | "HIRA"
  std::optional<std::string> task_type;  // "SEQ_CLS", "FEATURE_EXTRACTION", … (null when absent)
  std::optional<std::string> base_model_name_or_path;
  std::optional<std::string> peft_version = "0.18.0";  // the PEFT release whose layout this follows
  int64_t r = 8;
  double lora_alpha = 8.0;  // LORA only
  double dropout = 0.0;     // lora_dropout / hira_dropout
  bool use_rslora = false;  // LORA only
  TargetSpec targets;       // names (order kept) or a regex; never all-linear (expanded, as PEFT does)
  std::optional<std::vector<std::string>> modules_to_save;
  bool inference_mode = true;

  /// Throws peft::InputError naming `origin` and the key.
  static PeftAdapterConfig from_json_string(const std::string& text, const std::string& origin);
  static PeftAdapterConfig from_json_file(const std::string& path);
  std::string to_json_string() const;

  /// The config for a model trained with `cfg` on `task` (fails for full / head: no adapter).
  /// all-linear is written as the six names; classification heads as PEFT's SEQ_CLS default
  /// modules_to_save ["classifier", "score"] (which matches pre_classifier too).
  /// `family` names all-linear's targets and the MLM head modules (BERT: query, key, …).
  static PeftAdapterConfig from_method(const MethodConfig& cfg, model::Head task, model::Family family = model::Family::DistilBert);

  /// The adapter kinds this config builds: "lora" (also accepts sparse_lora) or "hira".
  bool accepts_kind(const std::string& kind) const;
  /// Whether a head module ("pre_classifier", …) is saved, by PEFT's suffix rule.
  bool saves_module(const std::string& module) const;
};

}  // namespace peft::adapters
