// Internal to edge/. FileBudget: the file bytes per second of a whole edge process
// (--file-rate, --file-burst), shared by its loops: FILE/UPLOAD_CHUNK and
// FILE/DOWNLOAD draw from it so that file transfers leave the CPU, disk and bus to
// chat. Thread-safe (a mutex; only file requests take it).
#pragma once

#include <cstdint>
#include <mutex>

#include "net/token_bucket.h"

namespace imbus::edge {

class FileBudget {
 public:
  using Clock = net::TokenBucket::Clock;

  explicit FileBudget(net::TokenRate rate) : rate_(rate) {}
  FileBudget(const FileBudget&) = delete;
  FileBudget& operator=(const FileBudget&) = delete;

  // Takes `bytes` and answers 0, or answers the milliseconds until they will be
  // there and takes nothing. Always 0 when the rate is off.
  int64_t Take(double bytes, Clock::time_point now) {
    if (!rate_.enabled()) return 0;
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t wait = bucket_.Check(rate_, now, bytes);
    if (wait == 0) bucket_.Consume(rate_, bytes);
    return wait;
  }

 private:
  const net::TokenRate rate_;
  std::mutex mu_;
  net::TokenBucket bucket_;
};

}  // namespace imbus::edge
