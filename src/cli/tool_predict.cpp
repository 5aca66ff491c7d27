#include <iostream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "adapters/peft_io.h"
#include "cli/cli_common.h"
#include "cli/tools.h"
#include "core/error.h"
#include "core/vocab_path.h"
#include "model/checkpoint.h"
#include "text/wordpiece.h"

namespace peft::cli {

int tool_predict(const std::vector<std::string>& args) {
  po::options_description desc("peft-tool predict options");
  std::string model_dir, adapter_dir;
  std::vector<std::string> texts;
  int max_length = 128;
  desc.add_options()("model", po::value(&model_dir)->required(), "Hugging Face DistilBERT folder")(
      "adapter", po::value(&adapter_dir), "PEFT adapter folder (adapter_config.json, adapter_model.safetensors)")(
      "text", po::value(&texts)->multitoken(), "text(s) to classify; without it, one text per stdin line")(
      "max-length", po::value(&max_length)->default_value(128), "truncation length");
  po::variables_map vm;
  if (!parse_args("peft-tool predict", "peft-tool predict --model DIR [--adapter DIR] [--text \"…\"]", args, desc, vm)) return 0;
  const std::string vocab = find_vocab(model_dir);
  if (vocab.empty()) throw_input("{}: no vocab.txt or tokenizer.json", model_dir);
  auto tok = text::WordPieceTokenizer::from_file(vocab);
  model::LoadOptions lo;
  lo.heads = {model::Head::Classifier};
  auto m = model::load_pretrained(model_dir, lo);
  if (!adapter_dir.empty()) adapters::load_adapter(*m, adapter_dir);
  m->eval();
  if (texts.empty())
    for (std::string line; std::getline(std::cin, line);) texts.push_back(line);
  torch::NoGradGuard g;
  const auto& labels = m->config().id2label;
  for (std::size_t s = 0; s < texts.size(); s += 64) {
    std::vector<std::string> chunk(texts.begin() + static_cast<long>(s), texts.begin() + static_cast<long>(std::min(texts.size(), s + 64)));
    auto enc = tok.encode_batch(chunk, max_length);
    auto ids = torch::from_blob(enc.ids.data(), {enc.batch, enc.seq}, torch::kLong).clone();
    auto mask = torch::from_blob(enc.mask.data(), {enc.batch, enc.seq}, torch::kLong).clone();
    auto probs = torch::softmax(m->classify(ids, mask), -1);
    for (int64_t i = 0; i < enc.batch; ++i) {
      nlohmann::json j;
      j["text"] = chunk[static_cast<std::size_t>(i)];
      const int64_t best = probs[i].argmax().item<int64_t>();
      j["label"] = labels[static_cast<std::size_t>(best)];
      nlohmann::json p = nlohmann::json::object();
      for (std::size_t k = 0; k < labels.size(); ++k) p[labels[k]] = probs[i][static_cast<int64_t>(k)].item<double>();
      j["probabilities"] = p;
      std::cout << j.dump() << "\n";
    }
  }
  return 0;
}

}  // namespace peft::cli
