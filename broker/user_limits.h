// Internal to broker/. UserLimits: the per-user rate limits (every request of a
// logged-in user, and MSG/SEND apart), one pair of token buckets per user. The broker
// sees every request of a user whatever edge or connection it came through, so this
// is the one place a limit across a user's connections holds.
//
// O(1) per request and bounded: buckets sit in a list ordered by last use; those
// idle long enough to be full again are forgotten (a fresh bucket is the same), and
// past `max_users` the least recently used one goes. Time is passed in (tests).
// Loop thread only. Movable, not copyable.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <unordered_map>

#include "net/token_bucket.h"

namespace imbus::broker {

// The defaults (the broker's flags) are far above what a person or the benchmarks
// do; they stop floods. A 0 rate turns a limit off.
struct UserLimitOptions {
  net::TokenRate requests{1000, 2000};  // any request of a logged-in user
  net::TokenRate sends{400, 800};       // MSG/SEND (also counts as a request)
  size_t max_users = 1000000;           // buckets kept at most
};

class UserLimits {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Refusal { kNone, kRequests, kSends };
  struct Verdict {
    Refusal refusal = Refusal::kNone;
    int64_t retry_ms = 0;  // > 0 when refused: a token is there by then
    bool allowed() const { return refusal == Refusal::kNone; }
  };

  explicit UserLimits(UserLimitOptions options);
  UserLimits(UserLimits&&) = default;
  UserLimits& operator=(UserLimits&&) = default;

  bool enabled() const { return options_.requests.enabled() || options_.sends.enabled(); }
  // One request of `uid` (`send`: a MSG/SEND). Takes a token from each bucket that
  // applies, or from none when one of them is empty.
  Verdict Take(uint64_t uid, bool send, Clock::time_point now);
  // Forgets up to `max` buckets that are full again; returns how many.
  size_t Evict(Clock::time_point now, size_t max);
  size_t size() const { return index_.size(); }

 private:
  struct Entry {
    uint64_t uid = 0;
    net::TokenBucket requests;
    net::TokenBucket sends;
    Clock::time_point last_used;
  };

  UserLimitOptions options_;
  std::chrono::nanoseconds idle_after_;  // the longer refill time of the two
  std::list<Entry> lru_;                 // most recently used first
  std::unordered_map<uint64_t, std::list<Entry>::iterator> index_;
};

}  // namespace imbus::broker
