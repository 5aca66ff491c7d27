#include "adapters/peft_io.h"

#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/ranges.h>

#include "adapters/hira.h"
#include "adapters/lora.h"
#include "core/error.h"
#include "model/tensor_io.h"

namespace peft::adapters {
namespace fs = std::filesystem;

namespace {

const char* kConfigFile = "adapter_config.json";
const char* kWeightsFile = "adapter_model.safetensors";
const std::string kPrefix = "base_model.model.";

/// Head parameters of `model` that `config` saves, by PEFT's modules_to_save suffix rule.
std::vector<std::string> saved_head_parameters(const model::DistilBert& model, const PeftAdapterConfig& config) {
  std::vector<std::string> out;
  for (model::Head h : {model::Head::Classifier, model::Head::MLM}) {
    if (!model.has_head(h)) continue;
    for (const auto& p : model.head_parameter_names(h))
      if (config.saves_module(p.substr(0, p.rfind('.')))) out.push_back(p);
  }
  return out;
}

torch::Tensor parameter(model::DistilBert& model, const std::string& name) {
  auto* p = model.named_parameters().find(name);
  PEFT_CHECK(p != nullptr, "model has no parameter {}", name);
  return *p;
}

/// Checks that an adapter agrees with the config it is saved under.
void check_adapter_matches(const AdapterRef& ref, const PeftAdapterConfig& c) {
  const auto& a = *ref.adapter;
  auto mismatch = [&](const std::string& what) {
    throw std::logic_error(fmt::format("save_adapter: the {} adapter at {} does not match the config ({})", a.kind(), ref.path, what));
  };
  if (!c.accepts_kind(a.kind())) mismatch("peft_type " + c.peft_type);
  if (a.rank() != c.r) mismatch(fmt::format("rank {} vs r {}", a.rank(), c.r));
  if (auto* l = dynamic_cast<const LoraLinear*>(&a)) {
    const auto& o = l->options();
    if (o.alpha != c.lora_alpha) mismatch(fmt::format("alpha {} vs lora_alpha {}", o.alpha, c.lora_alpha));
    if (o.dropout != c.dropout) mismatch(fmt::format("dropout {} vs lora_dropout {}", o.dropout, c.dropout));
    if (o.use_rslora != c.use_rslora) mismatch("use_rslora");
  } else if (auto* h = dynamic_cast<const HiraLinear*>(&a)) {
    if (h->options().dropout != c.dropout) mismatch(fmt::format("dropout {} vs hira_dropout {}", h->options().dropout, c.dropout));
  }
}

void write_text_file(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw_runtime("cannot write {}", tmp.string());
    out << text;
    if (!out.flush()) throw_runtime("cannot write {}", tmp.string());
  }
  fs::rename(tmp, path);
}

}  // namespace

std::string peft_key(const std::string& module_path) { return kPrefix + module_path; }

void save_adapter(model::DistilBert& model, const PeftAdapterConfig& config, const std::string& dir) {
  auto adapters = find_adapters(model);
  if (adapters.empty()) throw std::logic_error("save_adapter: the model holds no adapters");
  std::set<std::string> expected;
  for (const auto& slot : select_slots(model, config.targets)) expected.insert(slot.path);
  std::set<std::string> present;
  for (const auto& ref : adapters) present.insert(ref.path);
  if (expected != present)
    throw std::logic_error(fmt::format("save_adapter: target_modules {} select {} layers but the model has adapters on {}",
                                       config.targets.describe(), expected.size(), fmt::join(present, ", ")));

  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& ref : adapters) {
    check_adapter_matches(ref, config);
    for (const auto& [suffix, t] : ref.adapter->peft_tensors()) tensors.emplace_back(peft_key(ref.path + "." + suffix), t);
  }
  for (const auto& p : saved_head_parameters(model, config)) tensors.emplace_back(peft_key(p), parameter(model, p).detach());

  fs::create_directories(dir);
  model::write_safetensors((fs::path(dir) / kWeightsFile).string(), tensors, {{"format", "pt"}});
  write_text_file(fs::path(dir) / kConfigFile, config.to_json_string());
}

LoadedAdapter load_adapter(model::DistilBert& model, const std::string& dir, const LoadAdapterOptions& options) {
  if (!find_adapters(model).empty()) throw std::logic_error("load_adapter: the model already holds adapters");
  const std::string config_path = (fs::path(dir) / kConfigFile).string();
  const std::string weights_path = (fs::path(dir) / kWeightsFile).string();
  if (!fs::exists(config_path)) throw_input("{}: not found (is {} a PEFT adapter folder?)", config_path, dir);
  if (!fs::exists(weights_path)) throw_input("{}: not found (only safetensors adapters are read)", weights_path);

  LoadedAdapter loaded;
  loaded.config = PeftAdapterConfig::from_json_file(config_path);
  const auto& cfg = loaded.config;
  auto file = model::read_safetensors(weights_path);
  std::set<std::string> unused;
  for (const auto& [name, t] : file) unused.insert(name);

  // Adapters, built off the model and filled first; the model changes only after every check.
  std::vector<model::LinearSlot> slots;
  try {
    slots = select_slots(model, cfg.targets);
  } catch (const InputError& e) {
    throw_input("{}: {}{}{}", config_path, e.what(),
                cfg.base_model_name_or_path ? fmt::format("; the adapter was made for {}", *cfg.base_model_name_or_path) : "",
                file.empty() ? "" : fmt::format(" (first tensor: {})", file.begin()->first));
  }
  for (const auto& slot : slots) {
    std::shared_ptr<AdapterLinear> adapter;
    if (cfg.peft_type == "HIRA")
      adapter = std::make_shared<HiraLinear>(slot.get(), HiraOptions{cfg.r, 1.0, cfg.dropout});
    else
      adapter = std::make_shared<LoraLinear>(slot.get(), LoraOptions{cfg.r, cfg.lora_alpha, cfg.dropout, cfg.use_rslora});
    const std::string prefix = peft_key(slot.path + ".");
    std::map<std::string, torch::Tensor> by_suffix;
    for (auto it = file.lower_bound(prefix); it != file.end() && it->first.starts_with(prefix); ++it) {
      by_suffix[it->first.substr(prefix.size())] = it->second;
      unused.erase(it->first);
    }
    try {
      adapter->load_peft_tensors(by_suffix, prefix);
    } catch (const InputError& e) {
      throw_input("{}: {}", weights_path, e.what());
    }
    loaded.adapters.push_back({slot.path, slot.layer, slot.name, adapter});
  }

  // Heads saved with modules_to_save.
  std::vector<std::pair<torch::Tensor, torch::Tensor>> head_copies;  // (parameter, value)
  for (const auto& p : saved_head_parameters(model, cfg)) {
    const std::string key = peft_key(p);
    auto it = file.find(key);
    if (it == file.end())
      throw_input("{}: tensor {} is missing (modules_to_save [{}] saves it)", weights_path, key, fmt::join(*cfg.modules_to_save, ", "));
    auto dest = parameter(model, p);
    if (it->second.sizes() != dest.sizes())
      throw_input("{}: tensor {} has shape [{}], the model needs [{}]", weights_path, key, fmt::join(it->second.sizes(), ", "),
                  fmt::join(dest.sizes(), ", "));
    if (!it->second.is_floating_point()) throw_input("{}: tensor {} is not floating point", weights_path, key);
    head_copies.emplace_back(dest, it->second);
    unused.erase(key);
    loaded.heads.push_back(p);
  }
  if (!unused.empty())
    throw_input("{}: tensor {} does not fit the model: no targeted layer ({}) or saved head has that name{}", weights_path,
                *unused.begin(), cfg.targets.describe(), unused.size() > 1 ? fmt::format(" ({} such tensors)", unused.size()) : "");

  install(model, loaded.adapters);
  {
    torch::NoGradGuard g;
    for (auto& [dest, value] : head_copies) dest.copy_(value.to(dest.options().dtype().toScalarType()));
  }
  for (auto& p : model.parameters()) p.set_requires_grad(false);
  if (options.trainable) {
    for (auto& ref : loaded.adapters)
      for (auto t : ref.adapter->adapter_parameters()) t.set_requires_grad(true);
    for (const auto& p : loaded.heads) parameter(model, p).set_requires_grad(true);
  }
  return loaded;
}

}  // namespace peft::adapters
