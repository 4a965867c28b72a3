// Public. AuthStore: the narrow storage interface of the auth service, with a
// MariaDB implementation (MariaDbAuthStore) and an in-memory one for logic tests
// (MemoryAuthStore). Implementations are used by one thread at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace imbus::actors {

struct UserRecord {
  uint64_t uid = 0;
  std::string name;
  std::string pwhash;
};

struct TokenRecord {
  uint64_t uid = 0;
  std::string device;
  int64_t expires_at_ms = 0;  // system_clock milliseconds since the Unix epoch
};

class AuthStore {
 public:
  virtual ~AuthStore() = default;

  // A new user with a fresh uid (never one used before), or nullopt when a live
  // user already has `name` (compared case-insensitively).
  virtual std::optional<uint64_t> CreateUser(const std::string& name,
                                             const std::string& pwhash) = 0;
  // Live (not deleted) users only.
  virtual std::optional<UserRecord> FindUserByName(const std::string& name) = 0;
  virtual std::optional<UserRecord> FindUserByUid(uint64_t uid) = 0;
  // Marks the user deleted, frees its name and drops all its tokens. False if there
  // was no such live user.
  virtual bool DeleteUser(uint64_t uid) = 0;

  // `token_hash` is TokenHash(token). Also drops expired tokens of the same uid.
  virtual void SaveToken(const std::string& token_hash, const TokenRecord& token,
                         int64_t now_ms) = 0;
  virtual std::optional<TokenRecord> FindToken(const std::string& token_hash) = 0;
  virtual void DeleteTokens(uint64_t uid, const std::string& device) = 0;
};

}  // namespace imbus::actors
