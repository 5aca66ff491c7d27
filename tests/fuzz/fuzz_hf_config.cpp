// Hugging Face config.json (DistilBERT): parsing, validation, and a write/read round trip
// of what validates.
#include "fuzz_util.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  peft::fuzz::refuse_ok([&] {
    const auto cfg = peft::model::DistilBertConfig::from_json_string(text, "config.json");
    cfg.validate("config.json");
    const std::string written = cfg.to_json_string();
    const auto again = peft::model::DistilBertConfig::from_json_string(written, "written config.json");
    if (again.to_json_string() != written) std::abort();  // what is written reads back the same
  });
  return 0;
}
