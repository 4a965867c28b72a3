#include "codec/route_key.h"

#include <algorithm>
#include <optional>
#include <string>

#include "codec/body.h"

namespace imbus::codec {

uint64_t SendRouteKey(uint64_t uid, std::string_view body) {
  Body parsed;
  std::string error;
  if (!Body::Parse(body, &parsed, &error)) return 0;
  std::optional<uint64_t> to, gid;
  try {
    to = parsed.GetUint("to");
    gid = parsed.GetUint("gid");
  } catch (const BadField&) {
    return 0;
  }
  uint64_t key = 0;
  if (to && !gid && *to != 0) {
    key = Mix64(std::min(uid, *to) * 0x9E3779B97F4A7C15ull ^ std::max(uid, *to));
  } else if (gid && !to && *gid != 0) {
    key = Mix64(*gid ^ 0x67726F7570000000ull);  // "group"
  } else {
    return 0;
  }
  return key == 0 ? 1 : key;  // 0 means "no key"
}

}  // namespace imbus::codec
