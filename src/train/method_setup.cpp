#include "train/method_setup.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include <torch/torch.h>

#include "adapters/adapter.h"
#include "adapters/model_ops.h"
#include "adapters/inject.h"
#include "adapters/sparse_lora.h"
#include "core/error.h"
#include "model/nf4_linear.h"

namespace peft::train {

adapters::MethodConfig method_config(const TrialSpec& spec, int64_t total_steps, bool train_mlm_head) {
  const auto& m = spec.method;
  adapters::MethodConfig c;
  c.method = adapters::parse_method(m.method);
  c.rank = m.rank;
  c.alpha = m.alpha;
  c.dropout = m.dropout;
  c.use_rslora = m.rslora;
  c.targets = adapters::TargetSpec::from_list(m.targets, m.layers);
  c.hira_scale = m.hira_scale;
  c.train_mlm_head = train_mlm_head;
  auto& s = c.sparse;
  s.l1_lambda = m.l1;
  s.l1_proximal = m.l1_proximal;
  s.granularity = m.structured ? adapters::PruneGranularity::Structured : adapters::PruneGranularity::Unstructured;
  if (c.method == adapters::Method::SparseLoRA && m.sparsity > 0) {
    s.target_sparsity = m.sparsity;
    const auto at = [&](double frac) { return std::clamp<int64_t>(std::llround(frac * static_cast<double>(total_steps)), 1, std::max<int64_t>(1, total_steps)); };
    if (m.prune_schedule == "oneshot" || m.prune_schedule == "one_shot") {
      s.schedule = adapters::PruneSchedule::OneShot;
      s.prune_step = at(m.prune_start);
    } else {
      s.schedule = adapters::PruneSchedule::Cubic;
      s.start_step = at(m.prune_start);
      s.end_step = std::max(s.start_step, at(m.prune_end));
      s.every = std::max<int64_t>(1, m.prune_every);
    }
  }
  c.validate();
  return c;
}

c10::ScalarType qlora_compute_dtype(const std::string& setting, bool bf16, const torch::Device& device) {
  if (setting == "auto" || setting.empty()) return bf16 ? torch::kBFloat16 : torch::kFloat32;
  if (setting == "float32") return torch::kFloat32;
  if (setting == "bfloat16") return torch::kBFloat16;
  if (setting == "float16") {
    if (!device.is_cuda())
      throw_input("methods.qlora.compute_dtype = \"float16\" needs a GPU (LibTorch's CPU matmuls have no fp16); use \"bfloat16\" or \"float32\"");
    return torch::kHalf;
  }
  throw_input("methods.qlora.compute_dtype must be auto, float32, bfloat16 or float16 (found \"{}\")", setting);
}

adapters::BaseTransform nf4_base_transform(c10::ScalarType compute_dtype) {
  return [compute_dtype](std::shared_ptr<model::LinearBase> base, const model::LinearSlot&) -> std::shared_ptr<model::LinearBase> {
    auto dense = std::dynamic_pointer_cast<model::DenseLinear>(base);
    PEFT_CHECK(dense, "QLoRA expects dense base layers");
    return model::quantize_linear(*dense, compute_dtype);
  };
}

int64_t cast_frozen_linears(model::DistilBert& m, c10::ScalarType dtype) {
  torch::NoGradGuard g;
  int64_t n = 0;
  for (auto& slot : m.linear_slots()) {
    std::shared_ptr<model::LinearBase> l = slot.get();
    if (auto a = std::dynamic_pointer_cast<adapters::AdapterLinear>(l)) l = a->base();
    auto dense = std::dynamic_pointer_cast<model::DenseLinear>(l);
    if (!dense || dense->weight_param().requires_grad()) continue;
    dense->weight_param().set_data(dense->weight_param().to(dtype));
    if (dense->bias_param().defined() && !dense->bias_param().requires_grad())
      dense->bias_param().set_data(dense->bias_param().to(dtype));
    n += dense->weight_param().numel();
  }
  return n;
}


std::vector<ParamGroup> parameter_groups(model::DistilBert& m, adapters::Method method, const TrialSpec& spec) {
  const double head_lr = spec.train.head_lr > 0 ? spec.train.head_lr : spec.train.lr;
  std::vector<std::pair<std::string, torch::Tensor>> adapter_params, head_params;
  for (auto& p : m.named_parameters(true)) {
    if (!p.value().requires_grad()) continue;
    const bool is_head = p.key().rfind(m.base_prefix(), 0) != 0;
    (is_head && method != adapters::Method::Full ? head_params : adapter_params).emplace_back(p.key(), p.value());
  }
  auto groups = Trainer::decay_groups("adapters", adapter_params, spec.train.lr, spec.train.weight_decay);
  for (auto& g : Trainer::decay_groups("heads", head_params, head_lr, spec.train.weight_decay)) groups.push_back(std::move(g));
  if (groups.empty()) throw_input("trial {}: method {} leaves nothing trainable", spec.id, spec.method.method);
  return groups;
}

MethodHooks method_hooks(model::DistilBert& m, double lr) {
  // The adapters are found once, here: the hooks run every step and walk no module tree.
  auto refs = std::make_shared<const std::vector<adapters::AdapterRef>>(adapters::find_adapters(m));
  MethodHooks hooks;
  hooks.penalty = [refs] {
    torch::Tensor sum;
    for (const auto& ref : *refs) {
      auto p = ref.adapter->penalty();
      if (p.defined()) sum = sum.defined() ? sum + p : p;
    }
    return sum;
  };
  // The proximal L1 step shrinks by the learning rate of this step (the schedule's).
  hooks.after_optimizer_step = [refs, lr](int64_t step, int64_t, double scale) {
    for (const auto& ref : *refs) ref.adapter->after_optimizer_step(step + 1, lr * scale);
  };
  hooks.training_state = [refs] {
    std::vector<std::pair<std::string, torch::Tensor>> state;
    for (const auto& ref : *refs)
      if (auto s = std::dynamic_pointer_cast<adapters::SparseLoraLinear>(ref.adapter)) {
        state.emplace_back(ref.path + ".mask_A", s->mask_A());
        state.emplace_back(ref.path + ".mask_B", s->mask_B());
      }
    return state;
  };
  hooks.gradient_masks = [refs] {
    std::vector<std::pair<torch::Tensor, torch::Tensor>> masks;
    for (const auto& ref : *refs)
      if (auto s = std::dynamic_pointer_cast<adapters::SparseLoraLinear>(ref.adapter)) {
        masks.emplace_back(s->lora_A(), s->mask_A());
        masks.emplace_back(s->lora_B(), s->mask_B());
      }
    return masks;
  };
  return hooks;
}

}  // namespace peft::train
