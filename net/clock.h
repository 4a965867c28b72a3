// Public, header-only. The two clocks imbus reads: wall time in milliseconds since
// the epoch (what goes on the wire: message ts, deadlines, pongs) and steady time in
// milliseconds (for intervals within one process). One definition each.
#pragma once

#include <chrono>
#include <cstdint>

namespace imbus::net {

inline int64_t WallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace imbus::net
