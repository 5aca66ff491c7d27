#pragma once
// Hugging Face checkpoint folders: config.json + model.safetensors (+ vocab.txt or
// tokenizer.json). Loading follows transformers' from_pretrained: parameters found in the file
// are copied (F16/BF16 converted to fp32), a head the file lacks is freshly initialised and
// reported, unexpected tensors are reported, and a missing encoder weight or a shape mismatch
// is an error naming the file and tensor.
#include <memory>
#include <string>
#include <vector>

#include "model/distilbert.h"

namespace peft::model {

struct LoadReport {
  std::vector<std::string> newly_initialised;  // head parameters absent from the file
  std::vector<std::string> unexpected;         // tensors in the file the model does not use
};

struct LoadOptions {
  std::vector<Head> heads = {Head::Classifier};
  bool torch_default_head_init = false;  // see DistilBert::init_head
  uint64_t seed = 0;                     // for freshly initialised heads
};

std::shared_ptr<DistilBert> load_pretrained(const std::string& dir, const LoadOptions& opts, LoadReport* report = nullptr);
/// Loads the tensors of `file` into `model` (names as above); used by load_pretrained.
LoadReport load_weights(DistilBert& model, const std::string& file, const LoadOptions& opts);
/// Writes config.json and model.safetensors (tied vocab_projector.weight omitted, as HF does).
void save_pretrained(DistilBert& model, const std::string& dir);

}  // namespace peft::model
