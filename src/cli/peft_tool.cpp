// peft-tool: the utilities others script. Thin: each sub-command lives in tool_*.cpp.
#include <iostream>
#include <map>

#include "cli/cli_common.h"
#include "cli/tools.h"
#include "core/blas_core.h"
#include "core/error.h"
#include "core/log.h"

namespace {

struct Command {
  int (*run)(const std::vector<std::string>&);
  const char* help;
};

const std::map<std::string, Command>& commands() {
  static const std::map<std::string, Command> c = {
      {"tokenize", {peft::cli::tool_tokenize, "UTF-8 lines on stdin → one JSON array of token ids per line"}},
      {"forward", {peft::cli::tool_forward, "run DistilBERT on JSON ids/mask, print {\"logits\": …}"}},
      {"predict", {peft::cli::tool_predict, "classify texts with a model (+ PEFT adapter): label and probabilities per line"}},
      {"quantize", {peft::cli::tool_quantize, "write an NF4 (bitsandbytes names) copy of a checkpoint"}},
      {"merge", {peft::cli::tool_merge, "fold a PEFT adapter into the base weights, write a plain checkpoint"}},
      {"inspect", {peft::cli::tool_inspect, "list name, dtype and shape of every tensor of a .safetensors file"}},
  };
  return c;
}

void usage(std::ostream& out) {
  out << "usage: peft-tool COMMAND [OPTIONS]   (peft-tool COMMAND --help for its options)\n\ncommands:\n";
  for (const auto& [name, cmd] : commands()) out << "  " << name << std::string(12 - name.size(), ' ') << cmd.help << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  peft::restart_for_fitting_openblas_core(argv);  // core/blas_core.h
  peft::init_logging(0, "warn");
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    usage(std::cerr);
    return 2;
  }
  const std::string name = args[0];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(std::cout);
    return 0;
  }
  if (name == "--version") {
    std::cout << peft::cli::version_banner() << "\n";
    return 0;
  }
  auto it = commands().find(name);
  if (it == commands().end()) {
    std::cerr << "peft-tool: error: unknown command \"" << name << "\"\n";
    usage(std::cerr);
    return 2;
  }
  args.erase(args.begin());
  return peft::cli::run_guarded("peft-tool " + name, [&] { return it->second.run(args); });
}
