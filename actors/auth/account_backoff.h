// Internal to actors/auth. AccountBackoff: brute-force protection per target account,
// shared by every auth worker and edge because its state is in the AuthStore (the
// `login_failures` table). Each failed password check at an account (LOGIN,
// DELETE_ACCOUNT, whatever the address or connection) counts; after `free_failures`
// of them every further check must come `base_ms` * 2^(failures - free_failures - 1)
// after the previous failure (capped at `max_ms`), else it is refused RATE_LIMITED
// without looking at the password. A right password clears the account's count, and
// so does a quiet spell of 10 * `max_ms`: the owner can always wait it out.
//
// While an account is in backoff, an admitted check reserves its slot (moves the
// shared next_allowed_ms forward) before the hash runs, so parallel guesses on other
// workers are refused instead of slipping in together. Accounts not in backoff are
// not written to on a success: the many good logins of a load cost one read.
//
// Not thread-safe: one per AuthService (worker thread), using that worker's store.
#pragma once

#include <cstdint>

#include "actors/auth/auth_store.h"

namespace imbus::actors {

struct AccountBackoffOptions {
  uint32_t free_failures = 10;  // failed checks at one account before any wait
  int64_t base_ms = 1000;       // the first wait; doubles per further failure (0: off)
  int64_t max_ms = 300000;      // the longest wait
};

class AccountBackoff {
 public:
  AccountBackoff(AuthStore* store, AccountBackoffOptions options);  // store not owned
  AccountBackoff(const AccountBackoff&) = delete;
  AccountBackoff& operator=(const AccountBackoff&) = delete;

  struct Admission {
    int64_t wait_ms = 0;        // 0: check the password now; else refuse, wait this long
    bool has_failures = false;  // failures are recorded: a success must clear them
  };

  bool enabled() const { return options_.base_ms > 0; }
  // Whether `uid`'s password may be checked now (reserving a slot when needed).
  Admission Admit(uint64_t uid, int64_t now_ms);
  void Failed(uint64_t uid, int64_t now_ms);
  // `admission` is what Admit answered for this check.
  void Succeeded(uint64_t uid, const Admission& admission);
  // The wait after `failures` failures (0 while they are free).
  int64_t DelayMs(uint32_t failures) const;

 private:
  AuthStore* store_;
  AccountBackoffOptions options_;
  int64_t forget_after_ms_;
};

}  // namespace imbus::actors
