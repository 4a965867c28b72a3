#include "codec/codes.h"

namespace imbus::codec {

namespace {
struct CodeText {
  const char* name;
  const char* description;
};
constexpr CodeText kCodes[] = {
    {"OK", "success"},
    {"BAD_REQUEST", "the request was malformed or a value is out of range"},
    {"UNAUTHENTICATED", "login required, or wrong credentials"},
    {"FORBIDDEN", "not allowed"},
    {"NOT_FOUND", "no such user, group or conversation"},
    {"CONFLICT", "already exists (name taken, already a friend or member)"},
    {"RATE_LIMITED", "too many requests, slow down"},
    {"UNAVAILABLE", "the service is unavailable right now; safe to retry"},
    {"INTERNAL", "server fault; the request may or may not have taken effect"},
    {"TOO_LARGE", "a field exceeds its limit"},
    {"UNSUPPORTED", "unknown service or command"},
    {"QUOTA_EXCEEDED", "over your storage quota"},
    {"MISMATCH", "the file's size or checksum is not what was announced"},
};
}  // namespace

const char* CodeName(int code) {
  if (code < 0 || code >= static_cast<int>(sizeof(kCodes) / sizeof(kCodes[0]))) return "UNKNOWN";
  return kCodes[code].name;
}

const char* CodeDescription(int code) {
  if (code < 0 || code >= static_cast<int>(sizeof(kCodes) / sizeof(kCodes[0]))) {
    return "unknown error code";
  }
  return kCodes[code].description;
}

}  // namespace imbus::codec
