// Public. Argon2id password hashes (libsodium crypto_pwhash_str) and login tokens.
// sodium_init() must have run (the actor host does it at startup; EnsureSodium()).
// Thread-safe: no state besides the cost.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace imbus::actors {

// Calls sodium_init once; throws std::runtime_error if libsodium cannot start.
void EnsureSodium();

class PasswordHasher {
 public:
  // 0 means the interactive default. Throws std::invalid_argument below libsodium's
  // minimum (ops 1, mem 8192).
  PasswordHasher(uint64_t ops, size_t mem);

  // The "$argon2id$..." string to store. Throws std::runtime_error when out of memory.
  std::string Hash(std::string_view password) const;
  bool Verify(const std::string& hash, std::string_view password) const;

  bool below_interactive() const;
  uint64_t ops() const { return ops_; }
  size_t mem() const { return mem_; }

 private:
  uint64_t ops_;
  size_t mem_;
};

// 32 random bytes, base64url without padding (43 characters).
std::string NewToken();
// What the store keeps for a token: BLAKE2b-256 of it (32 raw bytes).
std::string TokenHash(std::string_view token);

}  // namespace imbus::actors
