// Public, header-only. LogLimiter: lets through at most `burst` log lines per
// `window` and counts the rest, so a flood (a refused peer reconnecting ten times a
// second) cannot fill the log while the next line still says how many were held back.
//
// Not thread-safe: one per thread (the broker loop, one BusPeer).
#pragma once

#include <chrono>
#include <cstdint>

namespace imbus::net {

class LogLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  LogLimiter(uint32_t burst, Clock::duration window) : burst_(burst), window_(window) {}

  // True when a line may be logged at `now`; then *suppressed is the number of lines
  // held back since the previous allowed one.
  bool Allow(uint64_t* suppressed, Clock::time_point now = Clock::now()) {
    if (used_ == 0 || now - window_start_ >= window_) {
      window_start_ = now;
      used_ = 0;
    }
    if (used_ >= burst_) {
      ++suppressed_;
      return false;
    }
    ++used_;
    *suppressed = suppressed_;
    suppressed_ = 0;
    return true;
  }

 private:
  uint32_t burst_;
  Clock::duration window_;
  Clock::time_point window_start_{};
  uint32_t used_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace imbus::net
