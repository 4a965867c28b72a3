// Public (tests). AuthStore in process memory: same rules as MariaDbAuthStore
// (uids never reused, names matched exactly but unique case-insensitively among live
// users, one token per device).
#pragma once

#include <map>
#include <unordered_map>

#include "actors/auth/auth_store.h"

namespace imbus::actors {

class MemoryAuthStore : public AuthStore {
 public:
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
  struct User {
    UserRecord record;
    bool deleted = false;
  };
  uint64_t next_uid_ = 1;
  std::map<uint64_t, User> users_;
  std::unordered_map<std::string, uint64_t> by_lower_name_;  // live users
  std::unordered_map<std::string, TokenRecord> tokens_;
  std::map<uint64_t, FailureRecord> failures_;
};

}  // namespace imbus::actors
