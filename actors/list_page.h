// Public. How every list answer is paged (docs/protocol.md "Lists are paged"):
// LIST_FRIENDS, LIST_GROUPS, GROUP_MEMBERS and CONVERSATIONS take an optional
// `after` (the key of the last entry the client has) and `limit`, and answer at
// most `limit` entries in key order plus `more`. Whatever the data, an answer never
// holds more than kMaxListReplyBytes of entries, so its frame fits the default
// max_frame: a request without `after` or `limit` (an older client) gets the first
// page, never a frame it cannot read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "actors/service.h"
#include "codec/body.h"

namespace imbus::actors {

inline constexpr uint32_t kDefaultListLimit = 200;
inline constexpr uint32_t kMaxListLimit = 500;
// Entries per answer by size (keys and msgpack headers included, estimated
// generously), so that the frame stays under 64 KiB with room for the rest.
inline constexpr size_t kMaxListReplyBytes = 56 * 1024;

// `limit` from the request: 1..kMaxListLimit, kDefaultListLimit when absent.
inline uint32_t ListLimit(const codec::Body& body) {
  const uint64_t limit = body.GetUint("limit").value_or(kDefaultListLimit);
  if (limit < 1 || limit > kMaxListLimit) {
    throw RequestError(codec::Code::kBadRequest, "limit must be 1-500");
  }
  return static_cast<uint32_t>(limit);
}

// Cuts `entries` (read with one row more than `limit`, to learn whether more
// exist) to what one answer carries: at most `limit`, and at most
// kMaxListReplyBytes by `size_of` (always at least one). Returns `more`.
template <typename T, typename SizeOf>
bool FitPage(std::vector<T>* entries, uint32_t limit, SizeOf size_of) {
  bool more = false;
  if (entries->size() > limit) {
    entries->resize(limit);
    more = true;
  }
  size_t bytes = 0;
  for (size_t i = 0; i < entries->size(); ++i) {
    bytes += size_of((*entries)[i]);
    if (bytes > kMaxListReplyBytes && i > 0) {
      entries->resize(i);
      return true;
    }
  }
  return more;
}

}  // namespace imbus::actors
