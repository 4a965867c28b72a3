#include "bus/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace imbus::bus {

void InitProcessLogging(const std::string& program, const std::string& level) {
  spdlog::set_default_logger(spdlog::stderr_color_mt(program));
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ " + program + ": %v");
}

}  // namespace imbus::bus
