// WikiText-2 token / raw files.
#include "data/wikitext.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = peft::fuzz::scratch() / "wiki.train.tokens";
  peft::fuzz::write_file(path, std::string_view(reinterpret_cast<const char*>(data), size));
  peft::fuzz::refuse_ok([&] {
    const auto lines = peft::data::read_wikitext_file(path);
    std::size_t bytes = 0;
    for (const auto& l : lines) {
      if (l.find('\n') != std::string::npos) std::abort();
      bytes += l.size();
    }
    if (bytes > size) std::abort();
  });
  return 0;
}
