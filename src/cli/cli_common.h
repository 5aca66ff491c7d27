#pragma once
// Shared pieces of the command-line tools: sub-command parsing with Boost.Program_options,
// one error handler, version banner.
#include <functional>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

namespace peft::cli {

namespace po = boost::program_options;

/// Parses `args` against `desc` (+ positional), prints help and returns false on --help.
/// Unknown options and bad values throw peft::InputError naming the option.
bool parse_args(const std::string& command, const std::string& usage, const std::vector<std::string>& args,
                po::options_description& desc, po::variables_map& vm,
                const po::positional_options_description* positional = nullptr);

/// Reads a JSON argument: inline text, or "@FILE" for a file, or "-" for stdin.
std::string read_json_argument(const std::string& value, const std::string& option);

/// Runs `body`, printing any exception as "peft-<tool>: error: …" and returning 1 (2 for bad input).
int run_guarded(const std::string& tool, const std::function<int()>& body);

std::string version_banner();

}  // namespace peft::cli
