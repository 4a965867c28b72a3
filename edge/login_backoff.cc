#include "edge/login_backoff.h"

#include <algorithm>

namespace imbus::edge {

namespace {
// An address quiet this many times the longest wait starts afresh.
constexpr int64_t kForgetAfterMaxWaits = 10;
constexpr size_t kEvictPerCall = 2;

int64_t CeilMs(LoginBackoff::Clock::duration d) {
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
  return std::max<int64_t>(1, ms);
}
}  // namespace

LoginBackoff::LoginBackoff(LoginBackoffOptions options)
    : options_(options),
      forget_after_(std::max<int64_t>(options.max_ms, options.base_ms) * kForgetAfterMaxWaits) {
  options_.max_ips = std::max<size_t>(1, options_.max_ips);
  options_.max_ms = std::max(options_.max_ms, options_.base_ms);
}

int64_t LoginBackoff::DelayMs(uint32_t failures) const {
  if (!enabled() || failures <= options_.free_failures) return 0;
  const uint32_t doublings = std::min<uint32_t>(failures - options_.free_failures - 1, 40);
  const int64_t cap = options_.max_ms;
  int64_t d = options_.base_ms;
  for (uint32_t i = 0; i < doublings && d < cap; ++i) d *= 2;
  return std::min(d, cap);
}

int64_t LoginBackoff::Admit(const std::string& ip, Clock::time_point now) {
  if (!enabled()) return 0;
  Evict(now);
  auto it = index_.find(ip);
  if (it == index_.end()) return 0;
  Entry& e = *it->second;
  if (now < e.next_allowed) return CeilMs(e.next_allowed - now);
  const int64_t reserve = DelayMs(e.failures + 1);
  if (reserve > 0) e.next_allowed = now + std::chrono::milliseconds(reserve);
  return 0;
}

void LoginBackoff::Failed(const std::string& ip, Clock::time_point now) {
  if (!enabled()) return;
  auto it = index_.find(ip);
  if (it == index_.end()) {
    if (index_.size() >= options_.max_ips) {
      index_.erase(lru_.back().ip);
      lru_.pop_back();
    }
    lru_.push_front(Entry{ip, 0, now, now});
    it = index_.emplace(ip, lru_.begin()).first;
  } else if (it->second != lru_.begin()) {
    lru_.splice(lru_.begin(), lru_, it->second);
  }
  Entry& e = *it->second;
  ++e.failures;
  e.last_failure = now;
  e.next_allowed = std::max(e.next_allowed, now + std::chrono::milliseconds(DelayMs(e.failures)));
  Evict(now);
}

void LoginBackoff::Succeeded(const std::string& ip) {
  auto it = index_.find(ip);
  if (it == index_.end()) return;
  lru_.erase(it->second);
  index_.erase(it);
}

void LoginBackoff::Evict(Clock::time_point now) {
  for (size_t n = 0; n < kEvictPerCall && !lru_.empty(); ++n) {
    const Entry& oldest = lru_.back();
    if (now - oldest.last_failure < forget_after_ || now < oldest.next_allowed) return;
    index_.erase(oldest.ip);
    lru_.pop_back();
  }
}

}  // namespace imbus::edge
