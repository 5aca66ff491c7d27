// PeftAdapterConfig::from_method: the part of peft_config.h that needs the method settings and
// the model's heads (LibTorch); the JSON is in the torch-free peft_config.cpp.
#include "adapters/method.h"
#include "adapters/peft_config.h"
#include "core/error.h"
#include "model/distilbert.h"

namespace peft::adapters {

PeftAdapterConfig PeftAdapterConfig::from_method(const MethodConfig& cfg, model::Head task, model::Family family) {
  if (!uses_adapters(cfg.method))
    throw_input("method {} has no PEFT adapter to save; save the whole model instead", method_name(cfg.method));
  cfg.validate();
  PeftAdapterConfig c;
  c.peft_type = cfg.method == Method::HiRA ? "HIRA" : "LORA";
  c.task_type = task == model::Head::Classifier ? "SEQ_CLS" : "FEATURE_EXTRACTION";
  c.r = cfg.rank;
  c.lora_alpha = cfg.alpha;
  c.dropout = cfg.dropout;
  c.use_rslora = cfg.method != Method::HiRA && cfg.use_rslora;
  c.targets = cfg.targets;
  if (c.targets.kind == TargetSpec::Kind::AllLinear) c.targets = TargetSpec::from_names(encoder_linear_names(family), cfg.targets.layers);
  if (task == model::Head::Classifier)
    c.modules_to_save = std::vector<std::string>{"classifier", "score"};
  else if (task == model::Head::MLM && cfg.train_mlm_head)
    c.modules_to_save = trained_head_modules(task, true, family);
  return c;
}

}  // namespace peft::adapters
