// Public. AuthStore on MariaDB (tables `users`, `tokens` and `login_failures`; schema
// migrations 1 and 4).
// Uses the worker thread's Db; not thread-safe.
#pragma once

#include "actors/auth/auth_store.h"
#include "actors/db/db.h"

namespace imbus::actors {

class MariaDbAuthStore : public AuthStore {
 public:
  explicit MariaDbAuthStore(Db* db) : db_(db) {}  // not owned

  std::optional<uint64_t> CreateUser(const std::string& name, const std::string& pwhash) override;
  std::optional<UserRecord> FindUserByName(const std::string& name) override;
  std::optional<UserRecord> FindUserByUid(uint64_t uid) override;
  bool DeleteUser(uint64_t uid) override;
  void SaveToken(const std::string& token_hash, const TokenRecord& token, int64_t now_ms,
                 size_t max_devices) override;
  std::optional<TokenRecord> FindToken(const std::string& token_hash) override;
  void DeleteTokens(uint64_t uid, const std::string& device) override;
  std::optional<FailureRecord> FindFailures(uint64_t uid) override;
  bool ReserveAttempt(uint64_t uid, int64_t expected, int64_t next) override;
  uint32_t AddFailure(uint64_t uid, int64_t now_ms, int64_t forget_before_ms) override;
  void DelayAttempts(uint64_t uid, int64_t next_ms) override;
  void ClearFailures(uint64_t uid) override;

 private:
  Db* db_;
};

}  // namespace imbus::actors
