// IMDB in the aclImdb layout. The input is a set of review files, NUL-separated; in each,
// the first byte picks the class (even: neg, odd: pos), the rest of the first line is the
// file name, the remaining lines the review. The readers' HTML clean-up is fuzzed on the
// whole input as well.
#include <filesystem>
#include <vector>

#include "data/imdb.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const std::string cleaned = peft::data::clean_imdb_review(all);
  if (cleaned.size() > all.size()) std::abort();

  namespace fs = std::filesystem;
  const fs::path root = peft::fuzz::scratch() / "aclImdb";
  std::error_code ec;
  fs::remove_all(root, ec);
  fs::create_directories(root / "train" / "neg");
  fs::create_directories(root / "train" / "pos");
  std::size_t pos = 0;
  for (int files = 0; pos < all.size() && files < 8; ++files) {
    std::size_t end = all.find('\0', pos);
    if (end == std::string_view::npos) end = all.size();
    const std::string_view rec = all.substr(pos, end - pos);
    pos = end + 1;
    if (rec.empty()) continue;
    const std::size_t nl = rec.find('\n');
    std::string name(rec.substr(1, nl == std::string_view::npos ? std::string_view::npos : nl - 1));
    for (char& c : name)
      if (c == '/') c = '_';
    if (name.empty() || name == "." || name == ".." || name.size() > 200) name = "0_1.txt";
    const std::string_view body = nl == std::string_view::npos ? std::string_view() : rec.substr(nl + 1);
    peft::fuzz::write_file(root / "train" / ((rec[0] & 1) ? "pos" : "neg") / name, body);
  }
  peft::fuzz::refuse_ok([&] {
    const auto split = peft::data::read_imdb(peft::fuzz::scratch(), "train", static_cast<int64_t>(size % 5));
    if (split.texts.size() != split.labels.size() || split.texts.empty()) std::abort();
  });
  return 0;
}
