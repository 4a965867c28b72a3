#include "broker/user_limits.h"

#include <algorithm>

namespace imbus::broker {

namespace {
constexpr size_t kEvictPerTake = 2;  // keeps the list short without a sweep
}  // namespace

UserLimits::UserLimits(UserLimitOptions options)
    : options_(options),
      idle_after_(std::max(options.requests.refill_time(), options.sends.refill_time())) {
  options_.max_users = std::max<size_t>(1, options_.max_users);
}

UserLimits::Verdict UserLimits::Take(uint64_t uid, bool send, Clock::time_point now) {
  Verdict v;
  if (!enabled()) return v;
  auto it = index_.find(uid);
  if (it == index_.end()) {
    if (index_.size() >= options_.max_users) {
      index_.erase(lru_.back().uid);
      lru_.pop_back();
    }
    lru_.push_front(Entry{uid, {}, {}, now});
    it = index_.emplace(uid, lru_.begin()).first;
  } else if (it->second != lru_.begin()) {
    lru_.splice(lru_.begin(), lru_, it->second);
  }
  Entry& e = *it->second;
  e.last_used = now;
  const int64_t wait_requests = e.requests.Check(options_.requests, now);
  const int64_t wait_sends = send ? e.sends.Check(options_.sends, now) : 0;
  if (wait_sends > 0) {
    v.refusal = Refusal::kSends;
    v.retry_ms = std::max(wait_sends, wait_requests);
  } else if (wait_requests > 0) {
    v.refusal = Refusal::kRequests;
    v.retry_ms = wait_requests;
  } else {
    e.requests.Consume(options_.requests);
    if (send) e.sends.Consume(options_.sends);
  }
  Evict(now, kEvictPerTake);
  return v;
}

size_t UserLimits::Evict(Clock::time_point now, size_t max) {
  size_t n = 0;
  while (n < max && !lru_.empty() && now - lru_.back().last_used >= idle_after_) {
    index_.erase(lru_.back().uid);
    lru_.pop_back();
    ++n;
  }
  return n;
}

}  // namespace imbus::broker
