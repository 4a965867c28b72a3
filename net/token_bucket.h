// Public. TokenBucket: the rate limiter shared by the edge (per connection) and the
// broker (per user). Pure: time is passed in, so tests drive it with a fake clock.
//
// A bucket holds up to `burst` tokens and gains `per_s` per second; a request takes
// one. The limit itself (TokenRate) is kept apart from the state, once per process,
// so a bucket costs 16 bytes (an edge holds one pair per connection). Copyable value.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>

namespace imbus::net {

struct TokenRate {
  double per_s = 0;  // tokens gained per second; <= 0: no limit
  double burst = 0;  // bucket size (at least 1 when enabled)

  bool enabled() const { return per_s > 0; }
  double size() const { return std::max(1.0, burst); }
  // How long an unused bucket takes to fill from empty: after that an idle bucket is
  // the same as a fresh one and may be forgotten.
  std::chrono::nanoseconds refill_time() const {
    if (!enabled()) return std::chrono::nanoseconds(0);
    return std::chrono::nanoseconds(static_cast<int64_t>(std::ceil(size() / per_s * 1e9)));
  }
};

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  // Refills for the time since the last call and says whether a token is there:
  // 0 when one is (it is not taken: Consume() does that), otherwise the
  // milliseconds (>= 1) until one will be. Always 0 when the rate is disabled.
  int64_t Check(const TokenRate& rate, Clock::time_point now) { return Check(rate, now, 1.0); }
  // The same for a request that costs `cost` tokens (bytes, for a byte budget); a
  // cost above the bucket's size is taken as the whole bucket, so it waits, but not
  // forever.
  int64_t Check(const TokenRate& rate, Clock::time_point now, double cost) {
    if (!rate.enabled()) return 0;
    const double size = rate.size();
    if (tokens_ < 0) {
      tokens_ = size;  // a new bucket starts full
    } else if (now > last_) {
      const double elapsed_s = std::chrono::duration<double>(now - last_).count();
      tokens_ = std::min(size, tokens_ + elapsed_s * rate.per_s);
    }
    if (now > last_) last_ = now;
    cost = std::min(std::max(cost, 1.0), size);
    if (tokens_ >= cost) return 0;
    const double wait_ms = std::ceil((cost - tokens_) / rate.per_s * 1000.0);
    return std::max<int64_t>(1, static_cast<int64_t>(wait_ms));
  }
  // Takes the token Check() found (call only after Check returned 0).
  void Consume(const TokenRate& rate) { Consume(rate, 1.0); }
  void Consume(const TokenRate& rate, double cost) {
    if (rate.enabled()) tokens_ -= std::min(std::max(cost, 1.0), rate.size());
  }
  // Check, and Consume when allowed.
  int64_t Take(const TokenRate& rate, Clock::time_point now) {
    const int64_t wait = Check(rate, now);
    if (wait == 0) Consume(rate);
    return wait;
  }

  Clock::time_point last_used() const { return last_; }

 private:
  double tokens_ = -1;  // < 0: never used (full)
  Clock::time_point last_{};
};

}  // namespace imbus::net
