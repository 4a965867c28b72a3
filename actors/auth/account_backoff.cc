#include "actors/auth/account_backoff.h"

#include <algorithm>

namespace imbus::actors {

namespace {
// An account quiet this many times the longest wait starts afresh.
constexpr int64_t kForgetAfterMaxWaits = 10;
}  // namespace

AccountBackoff::AccountBackoff(AuthStore* store, AccountBackoffOptions options)
    : store_(store), options_(options) {
  options_.base_ms = std::max<int64_t>(0, options_.base_ms);
  options_.max_ms = std::max(options_.max_ms, options_.base_ms);
  forget_after_ms_ = options_.max_ms * kForgetAfterMaxWaits;
}

int64_t AccountBackoff::DelayMs(uint32_t failures) const {
  if (!enabled() || failures <= options_.free_failures) return 0;
  const uint32_t doublings = std::min<uint32_t>(failures - options_.free_failures - 1, 40);
  int64_t d = options_.base_ms;
  for (uint32_t i = 0; i < doublings && d < options_.max_ms; ++i) d *= 2;
  return std::min(d, options_.max_ms);
}

AccountBackoff::Admission AccountBackoff::Admit(uint64_t uid, int64_t now_ms) {
  if (!enabled()) return {};
  const std::optional<FailureRecord> f = store_->FindFailures(uid);
  if (!f) return {};
  Admission a;
  a.has_failures = true;
  if (f->last_failure_ms <= now_ms - forget_after_ms_) return a;  // Failed starts afresh
  if (now_ms < f->next_allowed_ms) {
    a.wait_ms = f->next_allowed_ms - now_ms;
    return a;
  }
  // If this check fails it will make the next one wait: reserve that wait now, so
  // that of the attempts made in parallel (on any worker) only one goes ahead.
  const int64_t reserve = DelayMs(f->failures + 1);
  if (reserve > 0 && !store_->ReserveAttempt(uid, f->next_allowed_ms, now_ms + reserve)) {
    a.wait_ms = reserve;
  }
  return a;
}

void AccountBackoff::Failed(uint64_t uid, int64_t now_ms) {
  if (!enabled()) return;
  const uint32_t failures = store_->AddFailure(uid, now_ms, now_ms - forget_after_ms_);
  const int64_t delay = DelayMs(failures);
  if (delay > 0) store_->DelayAttempts(uid, now_ms + delay);
}

void AccountBackoff::Succeeded(uint64_t uid, const Admission& admission) {
  if (admission.has_failures) store_->ClearFailures(uid);
}

}  // namespace imbus::actors
