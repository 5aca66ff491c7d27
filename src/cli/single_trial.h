#pragma once
#include <string>
#include <vector>

namespace peft::cli {
/// `peft-sweep trial …`: one trial in one process, progress on the terminal, metrics as a table.
int run_single_trial(const std::vector<std::string>& args);
}  // namespace peft::cli
