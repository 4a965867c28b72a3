#include "bus/curve.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <zmq.h>

namespace imbus::bus {

namespace {

constexpr std::string_view kSpace = " \t\r\n\v\f";

std::string_view Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(kSpace);
  return s.substr(b, e - b + 1);
}

bool ReadFile(const std::string& path, std::string* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

bool WriteNewFile(const std::string& path, const std::string& text, mode_t mode,
                  std::string* error) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    *error = "cannot create " + path + ": " + std::strerror(errno);
    return false;
  }
  const ssize_t n = ::write(fd, text.data(), text.size());
  const bool ok = n == static_cast<ssize_t>(text.size());
  if (!ok) *error = "cannot write " + path + ": " + std::strerror(errno);
  ::close(fd);
  return ok;
}

}  // namespace

bool CurveAvailable() { return zmq_has("curve") != 0; }

bool GenerateCurveKeyPair(std::string* public_key, std::string* secret_key, std::string* error) {
  if (!CurveAvailable()) {
    *error = "this libzmq was built without CURVE support (zmq_has(\"curve\") is false)";
    return false;
  }
  char pub[kZ85KeyLength + 1] = {};
  char sec[kZ85KeyLength + 1] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    *error = std::string("zmq_curve_keypair: ") + zmq_strerror(zmq_errno());
    return false;
  }
  *public_key = pub;
  *secret_key = sec;
  return true;
}

bool ParseCurveKey(std::string_view text, std::string_view what, std::string* key,
                   std::string* error) {
  const std::string_view t = Trim(text);
  if (t.empty()) {
    *error = std::string(what) + " is empty";
    return false;
  }
  if (t.size() != kZ85KeyLength) {
    *error = std::string(what) + " must be " + std::to_string(kZ85KeyLength) +
             " Z85 characters, got " + std::to_string(t.size());
    return false;
  }
  const std::string z(t);
  uint8_t raw[32];
  if (zmq_z85_decode(raw, z.c_str()) == nullptr) {
    *error = std::string(what) + " is not valid Z85";
    return false;
  }
  *key = z;
  return true;
}

bool CurvePublicFromSecret(const std::string& secret_key, std::string* public_key,
                           std::string* error) {
  if (!CurveAvailable()) {
    *error = "this libzmq was built without CURVE support (zmq_has(\"curve\") is false)";
    return false;
  }
  std::string secret;
  if (!ParseCurveKey(secret_key, "secret key", &secret, error)) return false;
  char pub[kZ85KeyLength + 1] = {};
  if (zmq_curve_public(pub, secret.c_str()) != 0) {
    *error = std::string("zmq_curve_public: ") + zmq_strerror(zmq_errno());
    return false;
  }
  *public_key = pub;
  return true;
}

bool LoadCurveSecretFile(const std::string& path, std::string* secret_key, std::string* error) {
  std::string text;
  if (!ReadFile(path, &text, error)) return false;
  if (!ParseCurveKey(text, "secret key in " + path, secret_key, error)) return false;
  return true;
}

bool ParseCurveAllowList(std::string_view text, std::vector<std::string>* keys,
                         std::string* error) {
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    const std::string_view line = Trim(raw);
    if (line.empty() || line == "#" || line.substr(0, 2) == "# " || line.substr(0, 2) == "#\t") {
      continue;
    }
    const std::string_view token = line.substr(0, line.find_first_of(kSpace));
    std::string key;
    if (!ParseCurveKey(token, "line " + std::to_string(line_no), &key, error)) return false;
    keys->push_back(std::move(key));
  }
  return true;
}

bool LoadCurveAllowFile(const std::string& path, std::vector<std::string>* keys,
                        std::string* error) {
  std::string text;
  if (!ReadFile(path, &text, error)) return false;
  if (!ParseCurveAllowList(text, keys, error)) {
    *error = path + ": " + *error;
    return false;
  }
  return true;
}

bool ParseCurveKeyList(std::string_view text, std::vector<std::string>* keys, std::string* error) {
  constexpr std::string_view kSeparators = ", \t\r\n";
  size_t n = 0;
  while (!text.empty()) {
    const size_t b = text.find_first_not_of(kSeparators);
    if (b == std::string_view::npos) break;
    text = text.substr(b);
    const size_t e = text.find_first_of(kSeparators);
    const std::string_view token = text.substr(0, e);
    text = e == std::string_view::npos ? std::string_view() : text.substr(e);
    std::string key;
    if (!ParseCurveKey(token, "key " + std::to_string(++n), &key, error)) return false;
    keys->push_back(std::move(key));
  }
  return true;
}

bool WriteCurveKeyFiles(const std::string& base, const std::string& public_key,
                        const std::string& secret_key, std::string* error) {
  const std::string key_path = base + ".key";
  const std::string pub_path = base + ".pub";
  if (::access(key_path.c_str(), F_OK) == 0 || ::access(pub_path.c_str(), F_OK) == 0) {
    *error = key_path + " or " + pub_path + " exists; not overwriting";
    return false;
  }
  if (!WriteNewFile(key_path, secret_key + "\n", 0600, error)) return false;
  return WriteNewFile(pub_path, public_key + "\n", 0644, error);
}

bool ResolveCurveSecret(const std::string& secret_file, std::string* secret_key,
                        std::string* error) {
  secret_key->clear();
  if (!secret_file.empty()) return LoadCurveSecretFile(secret_file, secret_key, error);
  const char* env = std::getenv(kCurveSecretEnv);
  if (env == nullptr || *env == '\0') return true;
  return ParseCurveKey(env, kCurveSecretEnv, secret_key, error);
}

bool ResolveCurveClientKeys(const std::string& server_key, const std::string& secret_file,
                            CurveClientKeys* out, std::string* error) {
  *out = CurveClientKeys{};
  std::string secret;
  if (!ResolveCurveSecret(secret_file, &secret, error)) return false;
  if (server_key.empty() && secret.empty()) return true;  // CURVE off
  if (server_key.empty()) {
    *error = "a CURVE secret key is set but no --curve-server-key (the broker's public key)";
    return false;
  }
  if (secret.empty()) {
    *error = std::string("--curve-server-key needs our own secret key (--curve-secret-file or ") +
             kCurveSecretEnv + ")";
    return false;
  }
  if (!CurveAvailable()) {
    *error = "CURVE keys are configured but this libzmq has no CURVE support";
    return false;
  }
  if (!ParseCurveKey(server_key, "--curve-server-key", &out->server_public_key, error)) {
    return false;
  }
  out->secret_key = secret;
  return CurvePublicFromSecret(secret, &out->public_key, error);
}

std::string DescribeHandshakeError(uint32_t value) {
  switch (value) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
      return "security mechanism mismatch: CURVE is on at one end only";
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
      return "cryptographic error: the client's server key is not this broker's public key";
    default: {
      char hex[16];
      std::snprintf(hex, sizeof(hex), "0x%08x", value);
      return std::string("protocol error ") + hex;
    }
  }
}

std::string CurveKeyPrefix(std::string_view z85_key) {
  return std::string(z85_key.substr(0, 8)) + "...";
}

}  // namespace imbus::bus
