#include "core/log.h"

#include <cstdlib>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace peft {

void init_logging(int rank, const std::string& level) {
  auto logger = spdlog::stderr_color_mt("peft");
  logger->set_pattern(fmt::format("[%H:%M:%S.%e] [rank {}] [%^%l%$] %v", rank));
  std::string lvl = level;
  if (const char* env = std::getenv("PEFT_LOG_LEVEL")) lvl = env;
  logger->set_level(spdlog::level::from_str(lvl));
  spdlog::set_default_logger(logger);
}

}  // namespace peft
