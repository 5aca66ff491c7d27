#pragma once
// Sub-commands of peft-tool; each takes the arguments after its name and returns the exit code.
#include <string>
#include <vector>

namespace peft::cli {

int tool_tokenize(const std::vector<std::string>& args);
int tool_forward(const std::vector<std::string>& args);
int tool_inspect(const std::vector<std::string>& args);
int tool_predict(const std::vector<std::string>& args);
int tool_quantize(const std::vector<std::string>& args);
int tool_merge(const std::vector<std::string>& args);

}  // namespace peft::cli
