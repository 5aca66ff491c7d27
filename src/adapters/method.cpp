#include "adapters/method.h"

#include <set>

#include "core/error.h"

namespace peft::adapters {

Method parse_method(const std::string& name) {
  if (name == "lora") return Method::LoRA;
  if (name == "sparse_lora") return Method::SparseLoRA;
  if (name == "hira") return Method::HiRA;
  if (name == "qlora") return Method::QLoRA;
  if (name == "full") return Method::Full;
  if (name == "head") return Method::Head;
  throw_input("unknown method \"{}\" (expected lora, sparse_lora, hira, qlora, full or head)", name);
}

std::string method_name(Method m) {
  switch (m) {
    case Method::LoRA: return "lora";
    case Method::SparseLoRA: return "sparse_lora";
    case Method::HiRA: return "hira";
    case Method::QLoRA: return "qlora";
    case Method::Full: return "full";
    case Method::Head: return "head";
  }
  return "?";
}

bool uses_adapters(Method m) { return m != Method::Full && m != Method::Head; }

LoraOptions MethodConfig::lora_options() const { return {rank, alpha, dropout, use_rslora}; }
HiraOptions MethodConfig::hira_options() const { return {rank, hira_scale, dropout}; }

void MethodConfig::validate() const {
  if (!uses_adapters(method)) return;
  targets.validate();
  if (method == Method::HiRA)
    hira_options().validate();
  else
    lora_options().validate();
  if (method == Method::SparseLoRA) sparse.validate();
}

AdapterFactory make_adapter_factory(const MethodConfig& cfg) {
  switch (cfg.method) {
    case Method::LoRA:
    case Method::QLoRA:
      return [o = cfg.lora_options()](std::shared_ptr<model::LinearBase> base, const model::LinearSlot&) -> std::shared_ptr<AdapterLinear> {
        return std::make_shared<LoraLinear>(std::move(base), o);
      };
    case Method::SparseLoRA:
      return [o = cfg.lora_options(), s = cfg.sparse](std::shared_ptr<model::LinearBase> base, const model::LinearSlot&) -> std::shared_ptr<AdapterLinear> {
        return std::make_shared<SparseLoraLinear>(std::move(base), o, s);
      };
    case Method::HiRA:
      return [o = cfg.hira_options()](std::shared_ptr<model::LinearBase> base, const model::LinearSlot&) -> std::shared_ptr<AdapterLinear> {
        return std::make_shared<HiraLinear>(std::move(base), o);
      };
    case Method::Full:
    case Method::Head: break;
  }
  throw std::logic_error("method " + method_name(cfg.method) + " has no adapters");
}

std::vector<std::string> trained_head_modules(model::Head task, bool train_mlm_head, model::Family family) {
  const bool bert = family == model::Family::Bert;
  switch (task) {
    case model::Head::Classifier:
      if (bert) return {"classifier"};
      return {"pre_classifier", "classifier"};
    case model::Head::MLM:
      if (train_mlm_head && bert) return {"cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions"};
      if (train_mlm_head) return {"vocab_transform", "vocab_layer_norm", "vocab_projector"};
      return {};
    case model::Head::None: return {};
  }
  return {};
}

namespace {

/// Parameter names of the head modules in `modules`.
std::set<std::string> head_parameters(const model::DistilBert& model, model::Head task, const std::vector<std::string>& modules) {
  std::set<std::string> out;
  for (const auto& p : model.head_parameter_names(task)) {
    const auto module = p.substr(0, p.rfind('.'));
    if (std::find(modules.begin(), modules.end(), module) != modules.end()) out.insert(p);
  }
  return out;
}

}  // namespace

AppliedMethod apply_method(model::DistilBert& model, const MethodConfig& cfg, model::Head task, const BaseTransform& quantize) {
  cfg.validate();
  if (!find_adapters(model).empty()) throw std::logic_error("apply_method: the model already holds adapters");
  if (task != model::Head::None && !model.has_head(task))
    throw std::logic_error("apply_method: the model has no " + model::head_name(task) + " head");

  AppliedMethod applied;
  const bool full = cfg.method == Method::Full;
  const bool fixed_positions = model.config().sinusoidal_pos_embds;
  for (auto& p : model.named_parameters()) {
    const bool positions = p.key() == model.base_prefix() + "embeddings.position_embeddings.weight";
    p.value().set_requires_grad(full && !(positions && fixed_positions));
  }
  if (full) return applied;

  applied.trained_modules = cfg.method == Method::Head ? trained_head_modules(task, /*train_mlm_head=*/true, model.family())
                                                       : trained_head_modules(task, cfg.train_mlm_head, model.family());
  const auto trained = head_parameters(model, task, applied.trained_modules);
  for (auto& p : model.named_parameters())
    if (trained.count(p.key())) p.value().set_requires_grad(true);
  if (cfg.method == Method::Head) return applied;

  if (cfg.method == Method::QLoRA) {
    if (!quantize) throw std::logic_error("apply_method: qlora needs a BaseTransform that quantizes the encoder linears");
    for (auto& slot : model.linear_slots()) {
      auto q = quantize(slot.get(), slot);
      PEFT_CHECK(q, "quantizer returned null for {}", slot.path);
      for (auto& p : q->parameters()) p.set_requires_grad(false);
      slot.set(std::move(q));
    }
  }
  applied.adapters = inject(model, cfg.targets, make_adapter_factory(cfg));
  return applied;
}

ParamCounts count_parameters(model::DistilBert& model) {
  ParamCounts c;
  std::set<const void*> seen;
  for (const auto& p : model.parameters()) {
    if (!seen.insert(p.unsafeGetTensorImpl()).second) continue;
    c.total += p.numel();
    if (p.requires_grad()) c.trainable += p.numel();
  }
  for (const auto& ref : find_adapters(model))
    for (const auto& t : ref.adapter->adapter_parameters()) {
      c.adapter += t.numel();
      c.adapter_nonzero += t.count_nonzero().item<int64_t>();
    }
  return c;
}

}  // namespace peft::adapters
