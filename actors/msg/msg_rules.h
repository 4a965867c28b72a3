// Public. The pure rules of the MSG service (PROTOCOL.md service 5): conversation
// ids, request validation, UTF-8. No I/O, so they are unit-tested directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "codec/body.h"

namespace imbus::actors::msg {

inline constexpr size_t kMaxText = 8192;
inline constexpr size_t kMaxCmid = 64;
inline constexpr uint64_t kDefaultSyncLimit = 200;
inline constexpr uint64_t kMaxSyncLimit = 500;
inline constexpr uint64_t kDefaultHistoryLimit = 50;
inline constexpr uint64_t kMaxHistoryLimit = 100;
// SYNC and HISTORY put at most this many bytes of messages in one reply, so that the
// response frame fits the default max_frame (65,536) whatever the limit asked for
// (200 messages of 8 KiB would not); the rest comes with `more` / the next page.
inline constexpr size_t kMaxReplyBytes = 56 * 1024;

// A parsed conversation id: "d:<lo>:<hi>" (lo <= hi) or "g:<gid>".
struct ConvId {
  bool group = false;
  uint64_t lo = 0;   // direct: the lower uid
  uint64_t hi = 0;   // direct: the higher uid (== lo when writing to oneself)
  uint64_t gid = 0;  // group

  bool HasMember(uint64_t uid) const { return !group && (uid == lo || uid == hi); }
  // Direct: the other participant as seen by `uid` (uid itself for d:7:7).
  uint64_t Peer(uint64_t uid) const { return uid == lo ? hi : lo; }
};

std::string DirectConv(uint64_t a, uint64_t b);  // order-independent
std::string GroupConv(uint64_t gid);
// Strict: decimal without sign or leading zeros, ids > 0, lo <= hi. nullopt otherwise.
std::optional<ConvId> ParseConv(std::string_view conv);

// Well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view text);

// A validated SEND body. Exactly one of to_uid / gid is non-zero.
struct SendFields {
  uint64_t to_uid = 0;
  uint64_t gid = 0;
  std::string cmid;
  std::string text;  // empty only when `file` is given
  // Issue 19: a file id (1-64 bytes), or empty for none.
  std::string file;
};
inline constexpr size_t kMaxFileId = 64;
// Throws RequestError (BAD_REQUEST, TOO_LARGE) or codec::BadField.
SendFields ParseSend(const codec::Body& body);

// `limit` from a body: absent -> def; outside 1..max -> RequestError BAD_REQUEST.
uint64_t ParseLimit(const codec::Body& body, uint64_t def, uint64_t max);

// A validated ACK body: `conv` well-formed (participation is the store's to check).
struct AckFields {
  std::string conv;
  ConvId id;
  uint64_t seq = 0;
};
// Throws RequestError (BAD_REQUEST "malformed conv") or codec::BadField.
AckFields ParseAck(const codec::Body& body);

// A validated HISTORY body.
struct HistoryFields {
  std::string conv;
  ConvId id;
  uint64_t before = 0;  // 0: from the newest
  uint64_t limit = 0;   // 1..kMaxHistoryLimit
};
// Throws RequestError (BAD_REQUEST) or codec::BadField.
HistoryFields ParseHistory(const codec::Body& body);

}  // namespace imbus::actors::msg
