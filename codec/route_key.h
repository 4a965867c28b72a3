// Public. RouteKey: the conversation a MSG/SEND writes to, as a 64-bit key, so the
// broker can send every message of one conversation to the same msg worker (the
// one that owns its seqs, see actors/msg/conv_tails.h). Pure; no I/O.
#pragma once

#include <cstdint>
#include <string_view>

namespace imbus::codec {

// Mixes 64 bits (splitmix64's finaliser): neighbouring ids land far apart.
inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

// For a request of `uid` with a MSG/SEND `body`: a non-zero key naming its
// conversation ({uid, to} in either order, or the group). 0 when the body names
// neither (the worker refuses it; any worker will do).
uint64_t SendRouteKey(uint64_t uid, std::string_view body);

}  // namespace imbus::codec
