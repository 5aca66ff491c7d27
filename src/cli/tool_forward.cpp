#include <iostream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "adapters/peft_io.h"
#include "cli/cli_common.h"
#include "cli/tools.h"
#include "core/error.h"
#include "model/autocast.h"
#include "model/checkpoint.h"
#include "train/device.h"

namespace peft::cli {
namespace {

using nlohmann::json;

/// A JSON array of equal-length integer arrays → int64 [rows, cols].
torch::Tensor parse_matrix(const std::string& text, const std::string& option) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse errors, and numbers out of range (1e99999)
    throw_input("--{}: not valid JSON: {}", option, e.what());
  }
  if (!j.is_array() || j.empty()) throw_input("--{}: expected a non-empty JSON array of arrays of integers", option);
  const std::size_t cols = j[0].is_array() ? j[0].size() : 0;
  if (cols == 0) throw_input("--{}: row 0 must be a non-empty array of integers", option);
  auto t = torch::empty({static_cast<int64_t>(j.size()), static_cast<int64_t>(cols)}, torch::kLong);
  auto a = t.accessor<int64_t, 2>();
  for (std::size_t r = 0; r < j.size(); ++r) {
    if (!j[r].is_array() || j[r].size() != cols)
      throw_input("--{}: row {} has {} entries, row 0 has {} (pad the rows to one length)", option, r,
                  j[r].is_array() ? j[r].size() : 0, cols);
    for (std::size_t c = 0; c < cols; ++c) {
      if (!j[r][c].is_number_integer()) throw_input("--{}: entry [{}][{}] is not an integer", option, r, c);
      a[r][c] = j[r][c].get<int64_t>();
    }
  }
  return t;
}

json to_json(const torch::Tensor& t) {
  if (t.dim() == 0) return t.item<float>();
  json arr = json::array();
  if (t.dim() == 1) {
    auto c = t.contiguous();
    const float* p = c.data_ptr<float>();
    for (int64_t i = 0; i < c.size(0); ++i) arr.push_back(p[i]);
    return arr;
  }
  for (int64_t i = 0; i < t.size(0); ++i) arr.push_back(to_json(t[i]));
  return arr;
}

}  // namespace

int tool_forward(const std::vector<std::string>& args) {
  po::options_description desc("peft-tool forward options");
  std::string model_dir, adapter_dir, head_name, ids_arg, mask_arg, device_name, precision;
  desc.add_options()
      ("model", po::value(&model_dir)->required(), "Hugging Face DistilBERT folder (config.json, model.safetensors)")
      ("adapter", po::value(&adapter_dir), "PEFT adapter folder (adapter_config.json, adapter_model.safetensors) put on the model")
      ("head", po::value(&head_name)->default_value("classifier"), "classifier | mlm | none (last hidden state)")
      ("ids", po::value(&ids_arg)->required(), "token ids: JSON array of arrays, @FILE, or - for stdin")
      ("mask", po::value(&mask_arg), "attention mask (1 = token, 0 = padding), same shape; default all ones")
      ("device", po::value(&device_name)->default_value("cpu"), "cpu | cuda | auto")
      ("precision", po::value(&precision)->default_value("fp32"), "fp32 | bf16 (autocast, as a bf16 trial evaluates)");
  po::variables_map vm;
  if (!parse_args("peft-tool forward", "peft-tool forward --model DIR [--adapter DIR] --head classifier|mlm|none --ids JSON [--mask JSON]",
                  args, desc, vm))
    return 0;
  const model::Head head = model::parse_head(head_name);
  if (precision != "fp32" && precision != "bf16") throw_input("--precision: expected fp32 or bf16, found \"{}\"", precision);
  const torch::Device device = train::resolve_device(device_name);
  auto ids = parse_matrix(read_json_argument(ids_arg, "ids"), "ids");
  torch::Tensor mask = vm.count("mask") ? parse_matrix(read_json_argument(mask_arg, "mask"), "mask") : torch::ones_like(ids);
  if (mask.sizes() != ids.sizes())
    throw_input("--mask has shape [{}], --ids has shape [{}]", fmt::join(mask.sizes(), ", "), fmt::join(ids.sizes(), ", "));
  if (((mask != 0) & (mask != 1)).any().item<bool>()) throw_input("--mask entries must be 0 or 1");

  model::LoadOptions opts;
  opts.heads = {head};
  auto model = model::load_pretrained(model_dir, opts);
  if (!adapter_dir.empty()) adapters::load_adapter(*model, adapter_dir);  // its saved heads replace the checkpoint's
  const int64_t vocab = model->config().vocab_size;
  if ((ids < 0).any().item<bool>() || (ids >= vocab).any().item<bool>())
    throw_input("--ids: every id must be in [0, {}) (the model's vocab_size)", vocab);
  model->eval();
  model->to(device);
  torch::NoGradGuard no_grad;
  torch::Tensor out;
  {
    model::AutocastGuard autocast(device, precision == "bf16");
    out = model->forward(head, ids.to(device), mask.to(device));
  }
  out = out.to(torch::kCPU, torch::kFloat32);
  json result;
  result["logits"] = to_json(out);
  std::cout << result.dump() << "\n";
  return 0;
}

}  // namespace peft::cli
