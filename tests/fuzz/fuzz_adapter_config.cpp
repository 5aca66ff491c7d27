// PEFT adapter_config.json: parsing, validation, target-module selection against the module
// paths of a DistilBERT and a BERT encoder (names, the regex string form, all-linear,
// layers_to_transform), and a write/read round trip of what validates.
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "adapters/peft_config.h"
#include "fuzz_util.h"

namespace {

struct Module {
  std::string path;
  int64_t layer;
};

const std::vector<Module>& modules() {
  static const std::vector<Module> all = [] {
    std::vector<Module> m;
    for (int64_t l = 0; l < 6; ++l) {
      const std::string p = "distilbert.transformer.layer." + std::to_string(l) + ".";
      for (const char* s : {"attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin", "ffn.lin1", "ffn.lin2"})
        m.push_back({p + s, l});
    }
    for (int64_t l = 0; l < 12; ++l) {
      const std::string p = "bert.encoder.layer." + std::to_string(l) + ".";
      for (const char* s : {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                            "intermediate.dense", "output.dense"})
        m.push_back({p + s, l});
    }
    return m;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  peft::fuzz::refuse_ok([&] {
    using peft::adapters::PeftAdapterConfig;
    const auto cfg = PeftAdapterConfig::from_json_string(text, "adapter_config.json");
    std::vector<bool> hit;
    for (const auto& m : modules()) hit.push_back(cfg.targets.matches(m.path, m.layer));
    (void)cfg.targets.describe();
    (void)cfg.saves_module("pre_classifier");
    (void)cfg.accepts_kind("lora");
    // What validates is written as PEFT would and reads back as the same adapter.
    const std::string written = cfg.to_json_string();
    const auto again = PeftAdapterConfig::from_json_string(written, "written adapter_config.json");
    if (again.to_json_string() != written) std::abort();
    for (std::size_t i = 0; i < modules().size(); ++i)
      if (again.targets.matches(modules()[i].path, modules()[i].layer) != hit[i]) std::abort();
  });
  return 0;
}
