#include <iostream>
#include <filesystem>
#include <string>

#include "cli/cli_common.h"
#include "cli/tools.h"
#include "core/error.h"
#include "text/wordpiece.h"

namespace peft::cli {

int tool_tokenize(const std::vector<std::string>& args) {
  po::options_description desc("peft-tool tokenize options");
  std::string vocab;
  int max_length = 0;
  desc.add_options()
      ("vocab", po::value(&vocab)->required(), "vocab.txt or tokenizer.json (uncased WordPiece), or a model folder")
      ("max-length", po::value(&max_length)->default_value(0), "truncate to at most N ids including [CLS]/[SEP] (0: no limit)");
  po::variables_map vm;
  if (!parse_args("peft-tool tokenize", "peft-tool tokenize --vocab PATH [--max-length N] < lines.txt", args, desc, vm))
    return 0;
  if (max_length < 0 || max_length == 1) throw_input("--max-length must be 0 or at least 2 (found {})", max_length);
  std::string path = vocab;
  if (std::filesystem::is_directory(path)) {
    for (const char* n : {"vocab.txt", "tokenizer.json"})
      if (std::filesystem::exists(std::filesystem::path(vocab) / n)) { path = (std::filesystem::path(vocab) / n).string(); break; }
  }
  auto tok = text::WordPieceTokenizer::from_file(path);
  std::ios::sync_with_stdio(false);
  std::string line, out;
  std::size_t line_no = 0;
  while (std::getline(std::cin, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::vector<int32_t> ids;
    try {
      ids = tok.encode(line, max_length);
    } catch (const std::invalid_argument& e) {
      throw_input("stdin line {}: {}", line_no, e.what());
    }
    out.clear();
    out.push_back('[');
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (i) out.push_back(',');
      out += std::to_string(ids[i]);
    }
    out += "]\n";
    std::cout << out;
  }
  return 0;
}

}  // namespace peft::cli
