// Internal to the `imbus` binary. ProgressBar: one line on stderr for a transfer,
// "\r<label> [#####.....]  42%  21.0 MB / 50.0 MB  8.1 MB/s", drawn only when stderr
// is a terminal (and not --quiet), only once the transfer has taken more than a
// moment (300 ms), and redrawn at most 10 times a second.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace imbus::client::cli {

class ProgressBar {
 public:
  ProgressBar(std::string label, bool quiet);
  ~ProgressBar() { Finish(); }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void Update(uint64_t done, uint64_t total);
  // Ends the line if one was drawn (idempotent).
  void Finish();
  // Starts over (a second phase, e.g. the stored upload after a failed direct send).
  void Restart(std::string label);

 private:
  void Draw(uint64_t done, uint64_t total);

  using Clock = std::chrono::steady_clock;
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  Clock::time_point start_;
  Clock::time_point last_;
  uint64_t done_ = 0, total_ = 0;
};

}  // namespace imbus::client::cli
