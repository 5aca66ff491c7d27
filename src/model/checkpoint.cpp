#include "model/checkpoint.h"

#include <filesystem>
#include <fstream>
#include <set>

#include <spdlog/spdlog.h>

#include "core/error.h"
#include "model/nf4_linear.h"
#include "model/tensor_io.h"

namespace peft::model {
namespace fs = std::filesystem;

namespace {

/// The head a parameter belongs to (Head::None: not a head parameter).
Head head_of(const DistilBert& model, const std::string& name) {
  for (Head h : {Head::Classifier, Head::MLM})
    for (const auto& n : model.head_parameter_names(h))
      if (n == name) return h;
  return Head::None;
}

/// transformers accepts both "distilbert.x" / "bert.x" (task models) and "x" (DistilBertModel,
/// BertModel) names.
std::string canonical_name(const std::string& key, Family family) {
  static const std::vector<std::string> distilbert = {"embeddings.", "transformer."};
  static const std::vector<std::string> bert = {"embeddings.", "encoder.", "pooler."};
  for (const auto& p : family == Family::Bert ? bert : distilbert)
    if (key.rfind(p, 0) == 0) return family_name(family) + "." + key;
  return key;
}

}  // namespace

LoadReport load_weights(DistilBert& model, const std::string& file, const LoadOptions& opts) {
  LoadReport report;
  st::SafetensorsReader reader(file);
  std::map<std::string, const st::TensorInfo*> by_name;
  for (const auto& info : reader.tensors()) by_name[canonical_name(info.name, model.family())] = &info;

  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  auto params = model.named_parameters(/*recurse=*/true);
  auto buffers = model.named_buffers(/*recurse=*/true);
  // A head the file lacks (in part) is initialised first, so that the parts the file has
  // (BERT's pooler in a BertModel file) then load over it.
  std::set<Head> heads_to_init;
  for (auto& p : params)
    if (!by_name.count(p.key())) {
      const Head h = head_of(model, p.key());
      if (h == Head::None) throw_input("{}: tensor \"{}\" is missing (the model needs it)", file, p.key());
      heads_to_init.insert(h);
      report.newly_initialised.push_back(p.key());
    }
  for (Head h : heads_to_init) model.init_head(h, opts.torch_default_head_init, opts.seed);
  auto load_one = [&](const std::string& name, torch::Tensor& target) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      if (head_of(model, name) != Head::None) return;  // initialised above
      throw_input("{}: tensor \"{}\" is missing (the model needs it)", file, name);
    }
    const auto& info = *it->second;
    if (info.shape != target.sizes().vec())
      throw_input("{}: tensor \"{}\" has shape [{}], the model (config.json) expects [{}]", file, info.name,
                  fmt::join(info.shape, ", "), fmt::join(target.sizes(), ", "));
    auto t = read_tensor(reader, info);
    if (!t.is_floating_point()) throw_input("{}: tensor \"{}\" has integer dtype {}, expected a float", file, info.name, st::dtype_name(info.dtype));
    target.copy_(t.to(target.scalar_type()));
    used.insert(it->first);
  };
  // Layers already quantized from a bitsandbytes 4-bit checkpoint keep their NF4 buffers.
  auto is_nf4_buffer = [](const std::string& name) { return name.find(".weight_nf4") != std::string::npos || name.find(".weight_absmax_q") != std::string::npos || name.find(".weight_nested_") != std::string::npos || name.find(".weight_quant_map") != std::string::npos; };
  for (auto& p : params) load_one(p.key(), p.value());
  for (auto& b : buffers)
    if (!is_nf4_buffer(b.key())) load_one(b.key(), b.value());
  for (const auto& [name, info] : by_name)
    if (name.find(".weight.") != std::string::npos || (name.size() > 7 && name.substr(name.size() - 7) == ".weight" && info->dtype == st::DType::U8))
      used.insert(name);  // bitsandbytes NF4 entries, consumed by quantized_slots_from_file
  // The MLM projector weight is tied to the word embeddings (BERT's decoder bias to
  // cls.predictions.bias); a file may carry copies.
  used.insert("vocab_projector.weight");
  used.insert("cls.predictions.decoder.weight");
  used.insert("cls.predictions.decoder.bias");
  for (const auto& [name, info] : by_name)
    if (!used.count(name)) report.unexpected.push_back(info->name);
  return report;
}

std::shared_ptr<DistilBert> load_pretrained(const std::string& dir, const LoadOptions& opts, LoadReport* report_out) {
  if (!fs::is_directory(dir)) throw_input("{}: model folder not found", dir);
  const std::string config_path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(config_path)) throw_input("{}: no config.json (a Hugging Face DistilBERT or BERT folder is expected)", dir);
  auto config = DistilBertConfig::from_json_file(config_path);
  const std::string weights = (fs::path(dir) / "model.safetensors").string();
  if (!fs::exists(weights))
    throw_input("{}: no model.safetensors (convert pytorch_model.bin with transformers' save_pretrained(safe_serialization=True))", dir);
  auto model = std::make_shared<DistilBert>(config, opts.heads);
  // A 4-bit checkpoint written by `peft-tool quantize` (bitsandbytes names): those linears
  // become NF4Linear layers before the remaining tensors load.
  {
    st::SafetensorsReader reader(weights);
    for (auto& slot : model->linear_slots()) {
      const std::string key = slot.path + ".weight.quant_state.bitsandbytes__nf4";
      if (!reader.contains(key)) continue;
      std::map<std::string, torch::Tensor> sd;
      for (const auto& info : reader.tensors())
        if (info.name.rfind(slot.path + ".weight", 0) == 0) sd.emplace(info.name, read_tensor(reader, info));
      torch::Tensor bias;
      if (const auto* b = reader.find(slot.path + ".bias")) bias = read_tensor(reader, *b).to(torch::kFloat32);
      slot.set(std::make_shared<NF4Linear>(quant::from_bnb_state_dict(sd, slot.path), bias));
    }
  }
  LoadReport report = load_weights(*model, weights, opts);
  if (!report.newly_initialised.empty())
    spdlog::warn("{}: not in the checkpoint, newly initialised: {}", weights, fmt::join(report.newly_initialised, ", "));
  if (!report.unexpected.empty())
    spdlog::info("{}: tensors not used by this model: {}", weights, fmt::join(report.unexpected, ", "));
  if (report_out) *report_out = std::move(report);
  return model;
}

void save_pretrained(DistilBert& model, const std::string& dir) {
  fs::create_directories(dir);
  {
    const auto path = fs::path(dir) / "config.json";
    std::ofstream out(path);
    if (!out) throw_runtime("{}: cannot write", path.string());
    out << model.config().to_json_string();
  }
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& p : model.named_parameters(true)) tensors.emplace_back(p.key(), p.value());
  for (auto& b : model.named_buffers(true)) tensors.emplace_back(b.key(), b.value());
  write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
}

}  // namespace peft::model
