// Public. The 16-byte frame header of PROTOCOL.md and frame encoding. Pure: no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace imbus::codec {

inline constexpr size_t kHeaderSize = 16;
inline constexpr uint32_t kDefaultMaxFrame = 65536;
inline constexpr uint16_t kProtocolVersion = 1;

inline constexpr uint16_t kFlagResponse = 1u << 0;
inline constexpr uint16_t kFlagPush = 1u << 1;
inline constexpr uint16_t kKnownFlags = kFlagResponse | kFlagPush;

struct Header {
  uint32_t length = 0;  // whole frame, header included
  uint16_t version = kProtocolVersion;
  uint16_t flags = 0;
  uint16_t service = 0;
  uint16_t command = 0;
  uint32_t seq = 0;
};

// A whole frame: its header and its body (the msgpack bytes, not yet validated).
struct Frame {
  Header header;
  std::string body;
};

void EncodeHeader(const Header& h, char out[kHeaderSize]);
Header DecodeHeader(const char in[kHeaderSize]);

// Appends one frame (header with length filled in, then `body`) to *out. This is the
// one way frames are written, by the edge into its output buffers and by clients.
void AppendFrame(std::string* out, uint16_t flags, uint16_t service, uint16_t command, uint32_t seq,
                 std::string_view body);

inline std::string EncodeFrame(uint16_t flags, uint16_t service, uint16_t command, uint32_t seq,
                               std::string_view body) {
  std::string out;
  AppendFrame(&out, flags, service, command, seq, body);
  return out;
}

}  // namespace imbus::codec
