// Internal to edge/. LoginBackoff: brute-force protection per client IP address.
// Failed password or token checks (LOGIN, RESUME, DELETE_ACCOUNT answered
// UNAUTHENTICATED) from one address make the next attempts from it wait: after
// `free_failures` failures each attempt must come `base_ms` *
// 2^(failures - free_failures - 1) after the previous one (capped at `max_ms`).
// Each failure is noted with its target (the account the request named, e.g. "u:7"
// or "n:alice"; empty for RESUME). A success forgives only the failures the address
// made at the account it succeeded on (a typo, then the right password), never those
// at other accounts: logging in to one's own account between guesses at another's
// does not reset the count. An address quiet for 10 * `max_ms` is forgotten.
//
// An admitted attempt reserves its slot at once (as if it will fail), so attempts
// sent in parallel before any answer returns do not slip through.
//
// Pure and single-threaded: time is passed in (tests use a fake clock); IpLimits
// puts a mutex around it. Bounded: at most `max_ips` addresses, the least recently
// failed one goes first. Movable, not copyable.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace imbus::edge {

struct LoginBackoffOptions {
  uint32_t free_failures = 5;  // failures from one address before any wait
  int64_t base_ms = 1000;      // the first wait; doubles per further failure (0: off)
  int64_t max_ms = 60000;      // the longest wait
  size_t max_ips = 100000;     // addresses remembered at most
};

class LoginBackoff {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LoginBackoff(LoginBackoffOptions options);
  LoginBackoff(LoginBackoff&&) = default;
  LoginBackoff& operator=(LoginBackoff&&) = default;

  bool enabled() const { return options_.base_ms > 0; }
  // 0: `ip` may try now (the slot is reserved); otherwise milliseconds (>= 1) to wait.
  int64_t Admit(const std::string& ip, Clock::time_point now);
  // `target` names the account the attempt was for ("" when unknown).
  void Failed(const std::string& ip, const std::string& target, Clock::time_point now);
  // Forgives `ip`'s failures at `targets` (the names of the account that succeeded).
  void Succeeded(const std::string& ip, const std::vector<std::string>& targets);
  uint32_t failures(const std::string& ip) const;
  size_t size() const { return index_.size(); }
  // The wait after `failures` failures (0 while they are free).
  int64_t DelayMs(uint32_t failures) const;

 private:
  struct Entry {
    std::string ip;
    uint32_t failures = 0;  // all of them, attributed or not
    // Failures per target, at most kMaxTargets; further targets stay unattributed
    // (no success forgives them).
    std::vector<std::pair<std::string, uint32_t>> by_target;
    Clock::time_point next_allowed;
    Clock::time_point last_failure;
  };
  void Evict(Clock::time_point now);

  LoginBackoffOptions options_;
  std::chrono::milliseconds forget_after_;
  std::list<Entry> lru_;  // most recent failure first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace imbus::edge
