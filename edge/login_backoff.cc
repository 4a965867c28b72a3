#include "edge/login_backoff.h"

#include <algorithm>

namespace imbus::edge {

namespace {
// An address quiet this many times the longest wait starts afresh.
constexpr int64_t kForgetAfterMaxWaits = 10;
constexpr size_t kEvictPerCall = 2;
// Accounts tried from one address that are told apart; a pool of a few users behind
// one NAT fits, an attacker spraying many accounts gains nothing from more.
constexpr size_t kMaxTargets = 8;

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

void LoginBackoff::Failed(const std::string& ip, const std::string& target, Clock::time_point now) {
  if (!enabled()) return;
  auto it = index_.find(ip);
  if (it == index_.end()) {
    if (index_.size() >= options_.max_ips) {
      index_.erase(lru_.back().ip);
      lru_.pop_back();
    }
    lru_.push_front(Entry{ip, 0, {}, now, now});
    it = index_.emplace(ip, lru_.begin()).first;
  } else if (it->second != lru_.begin()) {
    lru_.splice(lru_.begin(), lru_, it->second);
  }
  Entry& e = *it->second;
  ++e.failures;
  if (!target.empty()) {
    auto t = std::find_if(e.by_target.begin(), e.by_target.end(),
                          [&](const auto& p) { return p.first == target; });
    if (t != e.by_target.end()) {
      ++t->second;
    } else if (e.by_target.size() < kMaxTargets) {
      e.by_target.emplace_back(target, 1);
    }
  }
  e.last_failure = now;
  e.next_allowed = std::max(e.next_allowed, now + std::chrono::milliseconds(DelayMs(e.failures)));
  Evict(now);
}

void LoginBackoff::Succeeded(const std::string& ip, const std::vector<std::string>& targets) {
  auto it = index_.find(ip);
  if (it == index_.end()) return;
  Entry& e = *it->second;
  std::erase_if(e.by_target, [&](const auto& p) {
    if (std::find(targets.begin(), targets.end(), p.first) == targets.end()) return false;
    e.failures -= p.second;
    return true;
  });
  if (e.failures == 0) {
    lru_.erase(it->second);
    index_.erase(it);
    return;
  }
  // The wait the remaining failures call for, counted from the last failure.
  e.next_allowed =
      std::min(e.next_allowed, e.last_failure + std::chrono::milliseconds(DelayMs(e.failures)));
}

uint32_t LoginBackoff::failures(const std::string& ip) const {
  auto it = index_.find(ip);
  return it == index_.end() ? 0 : it->second->failures;
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
