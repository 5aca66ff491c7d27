#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "cli/cli_common.h"
#include "cli/tools.h"
#include "core/error.h"
#include "model/checkpoint.h"
#include "model/nf4_linear.h"
#include "model/tensor_io.h"

namespace peft::cli {
namespace fs = std::filesystem;

int tool_quantize(const std::vector<std::string>& args) {
  po::options_description desc("peft-tool quantize options");
  std::string model_dir, out_dir;
  desc.add_options()("model", po::value(&model_dir)->required(), "Hugging Face DistilBERT or BERT folder")(
      "out", po::value(&out_dir)->required(), "output folder (config.json, model.safetensors, vocab)");
  po::variables_map vm;
  if (!parse_args("peft-tool quantize", "peft-tool quantize --model DIR --out DIR", args, desc, vm)) return 0;
  if (fs::exists(fs::path(out_dir) / "model.safetensors")) throw_input("{}: already holds a model.safetensors (nothing overwritten)", out_dir);
  model::LoadOptions lo;
  lo.heads = {};
  // Keep whatever heads the checkpoint has: load them with the encoder when present.
  st::SafetensorsReader probe((fs::path(model_dir) / "model.safetensors").string());
  if (probe.contains("classifier.weight")) lo.heads.push_back(model::Head::Classifier);
  if (probe.contains("vocab_transform.weight") || probe.contains("cls.predictions.transform.dense.weight"))
    lo.heads.push_back(model::Head::MLM);
  auto m = model::load_pretrained(model_dir, lo);
  const int64_t fp32_bytes = [&] {
    int64_t b = 0;
    for (auto& p : m->parameters()) b += static_cast<int64_t>(p.nbytes());
    return b;
  }();
  const int64_t n = model::quantize_encoder(*m);
  // bitsandbytes' state-dict names for the quantized layers; every other tensor as it was.
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  int64_t q_params = 0, q_bytes = 0, nf4_total_bytes = 0;
  for (auto& slot : m->linear_slots()) {
    auto q = std::dynamic_pointer_cast<model::NF4Linear>(slot.get());
    PEFT_CHECK(q, "layer {} not quantized", slot.path);
    for (auto& [k, v] : quant::to_bnb_state_dict(q->nf4(), slot.path)) tensors.emplace_back(k, v);
    if (q->bias().defined()) tensors.emplace_back(slot.path + ".bias", q->bias());
    q_params += q->in_features() * q->out_features();
    q_bytes += q->nf4().storage_bytes();
  }
  for (auto& p : m->named_parameters(true)) {
    bool in_slot = false;
    for (auto& slot : m->linear_slots()) in_slot |= p.key().rfind(slot.path + ".", 0) == 0;
    if (!in_slot) tensors.emplace_back(p.key(), p.value());
  }
  fs::create_directories(out_dir);
  model::write_safetensors((fs::path(out_dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
  for (auto& t : tensors) nf4_total_bytes += static_cast<int64_t>(t.second.nbytes());
  // config.json with transformers' bitsandbytes quantization_config.
  std::ifstream in((fs::path(model_dir) / "config.json").string());
  nlohmann::json cj = nlohmann::json::parse(in);
  cj["quantization_config"] = {{"quant_method", "bitsandbytes"},        {"load_in_4bit", true},
                               {"load_in_8bit", false},                 {"bnb_4bit_quant_type", "nf4"},
                               {"bnb_4bit_use_double_quant", true},     {"bnb_4bit_compute_dtype", "float32"},
                               {"bnb_4bit_quant_storage", "uint8"}};
  // The linears left in full precision (the heads, the pooler, the tied output layer), as
  // transformers' llm_int8_skip_modules: without it from_pretrained makes them 4-bit too and
  // bitsandbytes rejects their fp32 weights in the forward pass.
  std::vector<std::string> skip;
  for (const auto& item : m->named_modules("", /*include_self=*/false)) {
    if (!std::dynamic_pointer_cast<model::DenseLinear>(item.value())) continue;
    bool in_slot = false;
    for (auto& slot : m->linear_slots()) in_slot |= item.key() == slot.path || item.key().rfind(slot.path + ".", 0) == 0;
    if (!in_slot) skip.push_back(item.key());
  }
  skip.push_back(m->config().is_bert() ? "cls.predictions.decoder" : "vocab_projector");  // tied to the embeddings
  cj["quantization_config"]["llm_int8_skip_modules"] = skip;
  std::ofstream((fs::path(out_dir) / "config.json").string()) << cj.dump(2) << "\n";
  for (const char* f : {"vocab.txt", "tokenizer.json", "tokenizer_config.json"})
    if (fs::exists(fs::path(model_dir) / f)) fs::copy_file(fs::path(model_dir) / f, fs::path(out_dir) / f, fs::copy_options::overwrite_existing);
  std::cout << fmt::format("quantized {} linear layers ({} weights) to NF4 with double quantization: {:.3f} bits per weight\n", n,
                           q_params, 8.0 * static_cast<double>(q_bytes) / static_cast<double>(q_params));
  std::cout << fmt::format("model bytes: fp32 {} → NF4 {} ({:.2f}x smaller)\n", fp32_bytes, nf4_total_bytes,
                           static_cast<double>(fp32_bytes) / static_cast<double>(nf4_total_bytes));
  return 0;
}

}  // namespace peft::cli
