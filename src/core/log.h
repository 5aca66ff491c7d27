#pragma once
// Logging: spdlog with the MPI rank in every line ("[rank 3] ..."), set once at start-up.
#include <spdlog/spdlog.h>

namespace peft {

/// Configure the default logger: pattern with rank, level from PEFT_LOG_LEVEL or `level`.
void init_logging(int rank = 0, const std::string& level = "info");

}  // namespace peft
