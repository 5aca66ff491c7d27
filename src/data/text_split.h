#pragma once
// One split of a text classification data set as read from disk, before tokenisation.
#include <cstdint>
#include <string>
#include <vector>

namespace peft::data {

struct TextSplit {
  std::vector<std::string> texts;
  std::vector<int64_t> labels;    // one per text; -1 = unlabelled (SST-2 test)
  std::vector<uint8_t> contrast;  // synthetic sentiment only: 1 = contrast clause; else empty
  std::string source;             // file or folder it came from, for messages

  std::size_t size() const { return texts.size(); }
  void reserve(std::size_t n) {
    texts.reserve(n);
    labels.reserve(n);
  }
};

}  // namespace peft::data
