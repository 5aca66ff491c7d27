#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/cli_common.h"
#include "cli/tools.h"
#include "io/safetensors.h"

namespace peft::cli {

int tool_inspect(const std::vector<std::string>& args) {
  po::options_description desc("peft-tool inspect options");
  std::string file;
  bool json = false;
  desc.add_options()("file", po::value(&file)->required(), "the .safetensors file")("json", po::bool_switch(&json), "print JSON");
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  if (!parse_args("peft-tool inspect", "peft-tool inspect FILE.safetensors [--json]", args, desc, vm, &pos)) return 0;
  st::SafetensorsReader reader(file);
  int64_t total = 0;
  std::size_t width = 4;
  for (const auto& t : reader.tensors()) width = std::max(width, t.name.size());
  if (!json) std::cout << fmt::format("{:<{}}  {:<5}  {}\n", "name", width, "dtype", "shape");
  std::string sep;
  if (json) std::cout << "[";
  for (const auto& t : reader.tensors()) {
    total += t.numel();
    if (json)
      std::cout << sep << fmt::format("{{\"name\":\"{}\",\"dtype\":\"{}\",\"shape\":[{}]}}", t.name, st::dtype_name(t.dtype), fmt::join(t.shape, ","));
    else
      std::cout << fmt::format("{:<{}}  {:<5}  [{}]\n", t.name, width, st::dtype_name(t.dtype), fmt::join(t.shape, ", "));
    sep = ",";
  }
  if (json)
    std::cout << "]\n";
  else
    std::cout << fmt::format("{} tensors, {} elements\n", reader.tensors().size(), total);
  return 0;
}

}  // namespace peft::cli
