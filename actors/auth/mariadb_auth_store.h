// Public. AuthStore on MariaDB (tables `users` and `tokens`, schema migration 1).
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
  void SaveToken(const std::string& token_hash, const TokenRecord& token, int64_t now_ms) override;
  std::optional<TokenRecord> FindToken(const std::string& token_hash) override;
  void DeleteTokens(uint64_t uid, const std::string& device) override;

 private:
  Db* db_;
};

}  // namespace imbus::actors
