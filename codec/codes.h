// Public. The result codes of PROTOCOL.md, shared by every process and the client.
#pragma once

#include <cstdint>

namespace imbus::codec {

enum class Code : int {
  kOk = 0,
  kBadRequest = 1,
  kUnauthenticated = 2,
  kForbidden = 3,
  kNotFound = 4,
  kConflict = 5,
  kRateLimited = 6,
  kUnavailable = 7,
  kInternal = 8,
  kTooLarge = 9,
  kUnsupported = 10,
  kQuotaExceeded = 11,  // FILE: over the user's storage quota
  kMismatch = 12,       // FILE: size or sha256 differ from what was announced
};

// "OK", "BAD_REQUEST", ...; "UNKNOWN" for codes outside the table.
const char* CodeName(int code);

// A sentence for users of the command line client ("wrong name or password"...).
const char* CodeDescription(int code);

}  // namespace imbus::codec
