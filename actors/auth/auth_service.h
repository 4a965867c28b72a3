// Public. AuthService: PROTOCOL.md service 2 (REGISTER, LOGIN, RESUME, LOGOUT,
// DELETE_ACCOUNT). Business rules only; storage is an AuthStore, so the same logic
// runs on MariaDB in production and in memory in tests. One instance per worker
// thread. Every password hash or check is offloaded (Offload in service.h): Handle
// reads the store, the hash runs on the host's pool, the continuation writes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "actors/auth/account_backoff.h"
#include "actors/auth/auth_store.h"
#include "actors/auth/password_hasher.h"
#include "actors/service.h"

namespace imbus::actors {

class AuthService : public Service {
 public:
  struct Options {
    uint64_t pwhash_ops = 0;  // 0: interactive default
    size_t pwhash_mem = 0;
    int64_t token_ttl_s = 30 * 24 * 3600;
    // Devices of one user that keep a token; a LOGIN on one more drops the token
    // that expires first.
    size_t max_devices = 32;
    AccountBackoffOptions account_backoff;
    // Milliseconds since the Unix epoch; tests replace it to expire tokens.
    std::function<int64_t()> now_ms;
  };

  AuthService(std::unique_ptr<AuthStore> store, Options options);

  static constexpr const char* kDefaultDevice = "default";
  static constexpr const char* kBadCredentials = "wrong name or password";
  static constexpr const char* kBadToken = "invalid or expired token";

 private:
  void Register(const Request& req, Reply* reply);
  void Login(const Request& req, Reply* reply);
  void Resume(const Request& req, Reply* reply);
  void Logout(const Request& req, Reply* reply);
  void DeleteAccount(const Request& req, Reply* reply);

  // Offloads checking `password` against `user`'s hash, then calls `then` with the
  // verdict on the worker thread. Unknown users check a dummy hash so that both
  // failures take the same time.
  using CheckedFn = std::function<void(bool ok, const Request&, Reply*)>;
  void OffloadCheckPassword(const std::optional<UserRecord>& user, const std::string& password,
                            CheckedFn then, Reply* reply) const;
  // The optional session fields of LOGIN/RESUME, checked (BAD_REQUEST otherwise).
  struct SessionFields {
    uint16_t p2p_port = 0;
    std::string local_host;
  };
  static SessionFields ParseSessionFields(const codec::Body& body);
  // Fills action LOGIN and the SessionInfo for `user` on this connection.
  void BindSession(const Request& req, const UserRecord& user, const std::string& device,
                   SessionFields fields, Reply* reply) const;
  // True (and a RATE_LIMITED body in `reply`) when `user`'s account is backing off.
  bool RefuseIfBackingOff(const std::optional<UserRecord>& user,
                          AccountBackoff::Admission* admission, Reply* reply);

  std::unique_ptr<AuthStore> store_;
  Options options_;
  PasswordHasher hasher_;
  std::string dummy_hash_;
  AccountBackoff backoff_;  // uses store_
};

}  // namespace imbus::actors
