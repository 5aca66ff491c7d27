#pragma once
// The fine-tuning methods of a trial and what each one trains.
//
//   lora, sparse_lora, hira  frozen encoder, adapters in the target linears, task head trained
//   qlora                    as lora, on encoder linears first replaced by an NF4 base (src/quant
//                            supplies the BaseTransform; the adapters only see a LinearBase)
//   full                     every parameter trained (fixed sinusoidal positions stay fixed)
//   head                     only the task head trained
//
// Task heads follow HF PEFT's modules_to_save: for classification pre_classifier + classifier
// are trained in full (PEFT's SEQ_CLS default ["classifier", "score"] matches pre_classifier too,
// by suffix). For MLM PEFT trains no head by default — the pretrained MLM head stays frozen and
// the decoder weight is tied to the frozen word embeddings — and so do we, unless
// train_mlm_head is set (vocab_transform, vocab_layer_norm and vocab_projector.bias), which a
// randomly initialised base needs. The `head` baseline always trains the task head.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "adapters/hira.h"
#include "adapters/inject.h"
#include "adapters/lora.h"
#include "adapters/sparse_lora.h"
#include "model/distilbert.h"

namespace peft::adapters {

enum class Method { LoRA, SparseLoRA, HiRA, QLoRA, Full, Head };
Method parse_method(const std::string& name);  // lora | sparse_lora | hira | qlora | full | head
std::string method_name(Method m);
bool uses_adapters(Method m);

struct MethodConfig {
  Method method = Method::LoRA;
  int64_t rank = 8;
  double alpha = 16.0;  // lora, sparse_lora, qlora
  double dropout = 0.0;
  bool use_rslora = false;
  TargetSpec targets = TargetSpec::from_names({"q_lin", "v_lin"});
  SparseOptions sparse;     // sparse_lora
  double hira_scale = 1.0;  // hira; 1 = the paper
  bool train_mlm_head = false;

  void validate() const;  // throws peft::InputError naming the option
  LoraOptions lora_options() const;
  HiraOptions hira_options() const;
};

/// Builds the adapter `cfg.method` puts into a slot.
AdapterFactory make_adapter_factory(const MethodConfig& cfg);

/// Replaces one frozen encoder linear before adapters go in (QLoRA: DenseLinear → NF4 layer).
using BaseTransform = std::function<std::shared_ptr<model::LinearBase>(std::shared_ptr<model::LinearBase> base, const model::LinearSlot& slot)>;

struct AppliedMethod {
  std::vector<AdapterRef> adapters;
  std::vector<std::string> trained_modules;  // head modules trained in full ("pre_classifier", …)
};

/// Sets requires_grad for `cfg.method` and injects its adapters. `quantize` is required for
/// qlora (std::logic_error without it) and ignored otherwise. The model must hold no adapters.
AppliedMethod apply_method(model::DistilBert& model, const MethodConfig& cfg, model::Head task, const BaseTransform& quantize = {});

/// Head modules trained with the adapter methods for `task` (see above). BERT: "classifier"
/// (the pooler stays frozen with the encoder, as under PEFT); for MLM cls.predictions.transform
/// and cls.predictions (its bias).
std::vector<std::string> trained_head_modules(model::Head task, bool train_mlm_head,
                                              model::Family family = model::Family::DistilBert);

struct ParamCounts {
  int64_t trainable = 0;        // elements of parameters with requires_grad (PEFT's "trainable params")
  int64_t total = 0;            // elements of all parameters, each tensor once
  int64_t adapter = 0;          // elements of the adapter factors (A, B)
  int64_t adapter_nonzero = 0;  // of those, non-zero
};
ParamCounts count_parameters(model::DistilBert& model);

}  // namespace peft::adapters
