// Public. ZeroMQ CURVE keys for the bus: Z85 text (40 characters for a 32-byte key),
// loaded from files or environment variables, checked before any socket uses them.
// CURVE is off unless keys are configured; see docs/bus.md "Security".
//
// Pure functions over libzmq's key helpers; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace imbus::bus {

inline constexpr size_t kZ85KeyLength = 40;

// The CURVE settings of one bus peer (edge thread or actor worker). Empty
// server_public_key: CURVE off (the default, for local development).
struct CurveClientKeys {
  std::string server_public_key;  // the broker's public key, Z85
  std::string public_key;         // ours, Z85
  std::string secret_key;         // ours, Z85
  bool enabled() const { return !server_public_key.empty(); }
};

// True when this libzmq was built with CURVE (zmq_has("curve")).
bool CurveAvailable();

// A key pair made by zmq_curve_keypair; false (with *error) without CURVE support.
bool GenerateCurveKeyPair(std::string* public_key, std::string* secret_key, std::string* error);

// Checks one Z85 key (surrounding whitespace is trimmed): 40 characters of the Z85
// alphabet that decode to 32 bytes. `what` names it in the error ("server key").
bool ParseCurveKey(std::string_view text, std::string_view what, std::string* key,
                   std::string* error);

// The public key of a Z85 secret key (zmq_curve_public).
bool CurvePublicFromSecret(const std::string& secret_key, std::string* public_key,
                           std::string* error);

// Reads a secret key file: the Z85 key, surrounding whitespace ignored.
bool LoadCurveSecretFile(const std::string& path, std::string* secret_key, std::string* error);

// Parses an allow list: one Z85 public key per line, optionally followed by
// whitespace and a label ("KEY edge-a"); blank lines and lines starting with "# " are
// ignored (a key never contains a space, but may start with '#'). Errors name the
// line. Appends to *keys.
bool ParseCurveAllowList(std::string_view text, std::vector<std::string>* keys, std::string* error);
bool LoadCurveAllowFile(const std::string& path, std::vector<std::string>* keys,
                        std::string* error);

// Parses keys separated by commas and/or whitespace (the IMBUS_CURVE_ALLOW form; ','
// is not in the Z85 alphabet). Appends to *keys.
bool ParseCurveKeyList(std::string_view text, std::vector<std::string>* keys, std::string* error);

// Writes `<base>.key` (the secret, mode 0600) and `<base>.pub` (the public key),
// each the Z85 key and a newline. Refuses to overwrite an existing file.
bool WriteCurveKeyFiles(const std::string& base, const std::string& public_key,
                        const std::string& secret_key, std::string* error);

// The environment variable holding a process's own secret key in Z85 (no flag: a
// flag would show the secret in `ps`).
inline constexpr const char* kCurveSecretEnv = "IMBUS_CURVE_SECRET";

// A process's own secret key: read from `secret_file` when set, else from
// $IMBUS_CURVE_SECRET. True with an empty *secret_key when neither is set; false when
// the one given is unreadable or malformed.
bool ResolveCurveSecret(const std::string& secret_file, std::string* secret_key,
                        std::string* error);

// A peer's CURVE settings from its flags (and $IMBUS_CURVE_SECRET): all empty means
// CURVE off; a server key without a secret of our own (or the reverse) is an error.
bool ResolveCurveClientKeys(const std::string& server_key, const std::string& secret_file,
                            CurveClientKeys* out, std::string* error);

// Words for a ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL value (ZMQ_PROTOCOL_ERROR_*), with
// the likely cause for the ones a misconfiguration produces.
std::string DescribeHandshakeError(uint32_t value);

// The first characters of a key, enough to tell keys apart in logs without
// printing it whole.
std::string CurveKeyPrefix(std::string_view z85_key);

}  // namespace imbus::bus
