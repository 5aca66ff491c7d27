#include "cli/cli_common.h"

#include <fstream>
#include <iostream>
#include <sstream>

#include <torch/version.h>

#include "core/blas_core.h"
#include "core/error.h"
#include "peft/version.h"

namespace peft::cli {

bool parse_args(const std::string& command, const std::string& usage, const std::vector<std::string>& args,
                po::options_description& desc, po::variables_map& vm, const po::positional_options_description* positional) {
  desc.add_options()("help,h", "show this help");
  try {
    auto parser = po::command_line_parser(args).options(desc);
    if (positional) parser.positional(*positional);
    po::store(parser.run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: " << usage << "\n\n" << desc << "\n";
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw_input("{}: {} (see `{} --help`)", command, e.what(), command);
  }
  return true;
}

std::string read_json_argument(const std::string& value, const std::string& option) {
  if (value == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  if (!value.empty() && value[0] == '@') {
    std::ifstream in(value.substr(1), std::ios::binary);
    if (!in) throw_input("--{}: cannot read file {}", option, value.substr(1));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  return value;
}

int run_guarded(const std::string& tool, const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::invalid_argument& e) {
    std::cerr << tool << ": error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << tool << ": error: " << e.what() << "\n";
    return 1;
  }
}

std::string version_banner() {
  return fmt::format("peft-sweep {} (LibTorch {}{})", PEFT_VERSION, TORCH_VERSION, openblas_banner_note());
}

}  // namespace peft::cli
