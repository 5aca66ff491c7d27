#include <filesystem>
#include <iostream>

#include <torch/torch.h>

#include "adapters/adapter.h"
#include "adapters/model_ops.h"
#include "adapters/peft_io.h"
#include "cli/cli_common.h"
#include "cli/tools.h"
#include "core/error.h"
#include "model/checkpoint.h"
#include "model/nf4_linear.h"
#include "model/tensor_io.h"

namespace peft::cli {
namespace fs = std::filesystem;

// What PEFT users do with `merge_and_unload().save_pretrained(out)`: the adapter folded into the
// base weights, written as a plain Hugging Face checkpoint (transformers' names, tied
// vocab_projector omitted) that needs neither peft nor peft-sweep to run.
int tool_merge(const std::vector<std::string>& args) {
  po::options_description desc("peft-tool merge options");
  std::string model_dir, adapter_dir, out_dir;
  desc.add_options()("model", po::value(&model_dir)->required(), "Hugging Face DistilBERT folder (the adapter's base)")(
      "adapter", po::value(&adapter_dir)->required(), "PEFT adapter folder (LoRA / rsLoRA / Sparse LoRA / HiRA)")(
      "out", po::value(&out_dir)->required(), "output folder (config.json, model.safetensors, vocab)");
  po::variables_map vm;
  if (!parse_args("peft-tool merge", "peft-tool merge --model DIR --adapter DIR --out DIR", args, desc, vm)) return 0;
  if (fs::exists(fs::path(out_dir) / "model.safetensors")) throw_input("{}: already holds a model.safetensors (nothing overwritten)", out_dir);
  model::LoadOptions lo;
  lo.heads = {};
  st::SafetensorsReader probe((fs::path(model_dir) / "model.safetensors").string());
  if (probe.contains("classifier.weight")) lo.heads.push_back(model::Head::Classifier);
  if (probe.contains("vocab_transform.weight")) lo.heads.push_back(model::Head::MLM);
  auto m = model::load_pretrained(model_dir, lo);
  auto loaded = adapters::load_adapter(*m, adapter_dir);
  if (loaded.config.task_type.value_or("") == "SEQ_CLS" && !m->has_head(model::Head::Classifier))
    throw_input("{}: a SEQ_CLS adapter needs the base's classifier head, and {} has no classifier.weight", adapter_dir, model_dir);
  for (auto& slot : m->linear_slots())
    if (auto a = std::dynamic_pointer_cast<adapters::AdapterLinear>(slot.get()); a && std::dynamic_pointer_cast<model::NF4Linear>(a->base()))
      throw_input("{}: {} is 4-bit (NF4): there is no dense weight to merge into; merge onto the fp32 base", model_dir, slot.path);
  adapters::merge_all(*m);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  int64_t merged = 0;
  for (auto& slot : m->linear_slots()) {
    auto layer = slot.get();
    merged += std::dynamic_pointer_cast<adapters::AdapterLinear>(layer) ? 1 : 0;
    tensors.emplace_back(slot.path + ".weight", layer->effective_weight());
    if (layer->bias().defined()) tensors.emplace_back(slot.path + ".bias", layer->bias().detach());
  }
  for (auto& p : m->named_parameters(true)) {
    bool in_slot = false;
    for (auto& slot : m->linear_slots()) in_slot |= p.key().rfind(slot.path + ".", 0) == 0;
    if (!in_slot) tensors.emplace_back(p.key(), p.value().detach());
  }
  fs::create_directories(out_dir);
  model::write_safetensors((fs::path(out_dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
  fs::copy_file(fs::path(model_dir) / "config.json", fs::path(out_dir) / "config.json", fs::copy_options::overwrite_existing);
  for (const char* f : {"vocab.txt", "tokenizer.json", "tokenizer_config.json"})
    if (fs::exists(fs::path(model_dir) / f)) fs::copy_file(fs::path(model_dir) / f, fs::path(out_dir) / f, fs::copy_options::overwrite_existing);
  std::cout << fmt::format("merged {} {} adapter layers into {} ({} tensors{})\n", merged, loaded.config.peft_type, out_dir, tensors.size(),
                           loaded.heads.empty() ? "" : fmt::format(", saved heads {}", fmt::join(loaded.heads, " ")));
  return 0;
}

}  // namespace peft::cli
