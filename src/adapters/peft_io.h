#pragma once
// Adapters in HF PEFT's folder layout: adapter_config.json (peft_config.h) +
// adapter_model.safetensors, with PEFT's keys — the module path under "base_model.model." plus
// the adapter's suffix (`….q_lin.lora_A.weight`, `….q_lin.hira_A`) and the saved heads' own
// parameter names (`base_model.model.classifier.weight`); metadata {"format": "pt"}.
// Tensors are written in name order by the safetensors writer, so the same adapter always
// gives the same bytes (save → load → save is byte-identical).
//
// Sparse LoRA is saved as a LORA adapter whose pruned entries are zeros: the masks are implicit
// and no extra keys are written; loading gives LoRA adapters computing the same function.
#include <string>
#include <vector>

#include "adapters/inject.h"
#include "adapters/peft_config.h"
#include "model/distilbert.h"

namespace peft::adapters {

/// Writes `dir`/adapter_config.json and `dir`/adapter_model.safetensors (creating `dir`).
/// The model's adapters must be exactly the ones `config` describes (targets, type, rank,
/// alpha, dropout, rsLoRA): std::logic_error otherwise.
void save_adapter(model::DistilBert& model, const PeftAdapterConfig& config, const std::string& dir);

struct LoadAdapterOptions {
  /// false: everything frozen (inference, PEFT's default); true: base frozen, adapters and
  /// saved heads trainable.
  bool trainable = false;
};

struct LoadedAdapter {
  PeftAdapterConfig config;
  std::vector<AdapterRef> adapters;
  std::vector<std::string> heads;  // head parameters loaded ("pre_classifier.weight", …)
};

/// Reads a PEFT adapter folder and puts it on `model` (which must hold no adapters). Everything
/// is checked before the model changes: a target that matches no layer, a missing tensor, a
/// shape that does not fit, or a tensor the model has no place for is a peft::InputError naming
/// the file and the tensor.
LoadedAdapter load_adapter(model::DistilBert& model, const std::string& dir, const LoadAdapterOptions& options = {});

/// The PEFT key of a module path: "base_model.model." + path.
std::string peft_key(const std::string& module_path);

}  // namespace peft::adapters
