// safetensors: the header JSON, dtypes, shapes and offsets of a whole file.
#include "fuzz_util.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = peft::fuzz::scratch() / "model.safetensors";
  peft::fuzz::write_file(path, std::string_view(reinterpret_cast<const char*>(data), size));
  peft::fuzz::refuse_ok([&] {
    const peft::st::SafetensorsReader reader(path.string());
    unsigned sum = 0;
    for (const auto& t : reader.tensors()) {
      const auto bytes = reader.data(t);
      if (bytes.size() != t.nbytes()) std::abort();
      if (!bytes.empty()) sum += static_cast<unsigned>(bytes.front()) + static_cast<unsigned>(bytes.back());
      if (reader.find(t.name) != &t) std::abort();
      (void)t.numel();
    }
    for (const auto& [k, v] : reader.metadata()) sum += static_cast<unsigned>(k.size() + v.size());
    volatile unsigned sink = sum;
    (void)sink;
  });
  return 0;
}
