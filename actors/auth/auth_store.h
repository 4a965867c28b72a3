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

// Failed password checks at one account (AccountBackoff reads and writes them).
struct FailureRecord {
  uint32_t failures = 0;
  int64_t next_allowed_ms = 0;  // no password check before this (system_clock ms)
  int64_t last_failure_ms = 0;
};

class AuthStore {
 public:
  virtual ~AuthStore() = default;

  // A new user with a fresh uid (never one used before), or nullopt when a live
  // user already has `name` compared case-insensitively ("Alice" blocks "alice").
  virtual std::optional<uint64_t> CreateUser(const std::string& name,
                                             const std::string& pwhash) = 0;
  // Live (not deleted) users only; `name` must match exactly (bytes, case).
  virtual std::optional<UserRecord> FindUserByName(const std::string& name) = 0;
  virtual std::optional<UserRecord> FindUserByUid(uint64_t uid) = 0;
  // Marks the user deleted, frees its name and drops all its tokens. False if there
  // was no such live user.
  virtual bool DeleteUser(uint64_t uid) = 0;

  // `token_hash` is TokenHash(token). Replaces the token of (uid, device), if any:
  // a device has at most one token. Also drops the uid's expired tokens, and, when
  // the uid has more than `max_devices` tokens, those that expire first.
  virtual void SaveToken(const std::string& token_hash, const TokenRecord& token, int64_t now_ms,
                         size_t max_devices) = 0;
  virtual std::optional<TokenRecord> FindToken(const std::string& token_hash) = 0;
  virtual void DeleteTokens(uint64_t uid, const std::string& device) = 0;

  // Failed password checks of `uid` (nullopt: none recorded).
  virtual std::optional<FailureRecord> FindFailures(uint64_t uid) = 0;
  // Moves next_allowed_ms from `expected` to `next` if no one else has moved it
  // meanwhile: one of several parallel attempts wins. False if another did.
  virtual bool ReserveAttempt(uint64_t uid, int64_t expected, int64_t next) = 0;
  // Counts one failure at `now_ms` (starting from zero when the last one was at or
  // before `forget_before_ms`) and returns the count now stored.
  virtual uint32_t AddFailure(uint64_t uid, int64_t now_ms, int64_t forget_before_ms) = 0;
  // Raises next_allowed_ms to `next_ms` (never lowers it).
  virtual void DelayAttempts(uint64_t uid, int64_t next_ms) = 0;
  virtual void ClearFailures(uint64_t uid) = 0;
};

}  // namespace imbus::actors
