#include "actors/auth/password_hasher.h"

#include <sodium.h>

#include <mutex>
#include <stdexcept>

namespace imbus::actors {

void EnsureSodium() {
  static std::once_flag once;
  static int rc = 0;
  std::call_once(once, [] { rc = sodium_init(); });
  if (rc < 0) throw std::runtime_error("sodium_init failed");
}

PasswordHasher::PasswordHasher(uint64_t ops, size_t mem)
    : ops_(ops == 0 ? crypto_pwhash_OPSLIMIT_INTERACTIVE : ops),
      mem_(mem == 0 ? crypto_pwhash_MEMLIMIT_INTERACTIVE : mem) {
  EnsureSodium();
  if (ops_ < crypto_pwhash_OPSLIMIT_MIN || ops_ > crypto_pwhash_OPSLIMIT_MAX) {
    throw std::invalid_argument("pwhash ops must be >= " +
                                std::to_string(crypto_pwhash_OPSLIMIT_MIN));
  }
  if (mem_ < crypto_pwhash_MEMLIMIT_MIN) {
    throw std::invalid_argument(
        "pwhash mem must be >= " + std::to_string(crypto_pwhash_MEMLIMIT_MIN) + " bytes");
  }
}

bool PasswordHasher::below_interactive() const {
  return ops_ < crypto_pwhash_OPSLIMIT_INTERACTIVE || mem_ < crypto_pwhash_MEMLIMIT_INTERACTIVE;
}

std::string PasswordHasher::Hash(std::string_view password) const {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), ops_, mem_) != 0) {
    throw std::runtime_error("crypto_pwhash_str failed (out of memory?)");
  }
  return std::string(out);
}

bool PasswordHasher::Verify(const std::string& hash, std::string_view password) const {
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

std::string NewToken() {
  EnsureSodium();
  unsigned char raw[32];
  randombytes_buf(raw, sizeof(raw));
  char out[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(out, sizeof(out), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return std::string(out);
}

std::string TokenHash(std::string_view token) {
  unsigned char h[32];
  crypto_generichash(h, sizeof(h), reinterpret_cast<const unsigned char*>(token.data()),
                     token.size(), nullptr, 0);
  return std::string(reinterpret_cast<const char*>(h), sizeof(h));
}

}  // namespace imbus::actors
