#pragma once
// GLUE SST-2 in its official form: tab-separated, no quoting, one header line.
//   train.tsv, dev.tsv: header `sentence<TAB>label`, rows `<sentence> <TAB>{0,1}`
//   test.tsv:           header `index<TAB>sentence`, no labels (label -1 here)
// The layout is taken from the header. Every malformed row is an InputError naming
// file:line: missing header, wrong column count, label not 0/1, empty sentence, bad UTF-8;
// so are an empty file, a file with no rows and a missing file.
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "data/text_split.h"

namespace peft::data {

/// One SST-2 TSV file. `max_rows` > 0 keeps the first rows only (file order).
/// Sentences are kept as written, without the space before the tab.
TextSplit read_sst2_tsv(const std::filesystem::path& file, int64_t max_rows = 0);

/// `<dir>/<split>.tsv` with split "train", "dev" or "test".
TextSplit read_sst2(const std::filesystem::path& dir, std::string_view split, int64_t max_rows = 0);

}  // namespace peft::data
