// Public. One log format for every imbus server process: spdlog to stderr (stdout
// stays free for program output), "TIME LEVEL program: message".
#pragma once

#include <string>

namespace imbus::bus {

// Installs the stderr logger named `program` at `level` (trace, debug, info, warn,
// error). Call once, first thing in main(), before any thread starts.
void InitProcessLogging(const std::string& program, const std::string& level);

}  // namespace imbus::bus
