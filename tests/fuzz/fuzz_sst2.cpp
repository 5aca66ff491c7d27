// GLUE SST-2 TSV files (train/dev layout and test layout, picked by the header).
#include "data/sst2.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = peft::fuzz::scratch() / "train.tsv";
  peft::fuzz::write_file(path, std::string_view(reinterpret_cast<const char*>(data), size));
  peft::fuzz::refuse_ok([&] {
    const auto split = peft::data::read_sst2_tsv(path, static_cast<int64_t>(size % 7));
    if (split.texts.size() != split.labels.size() || split.texts.empty()) std::abort();
    for (int64_t l : split.labels)
      if (l < -1 || l > 1) std::abort();
  });
  return 0;
}
