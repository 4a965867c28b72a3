#include "codec/frame.h"

#include <cstring>

namespace imbus::codec {

namespace {
void Put16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v >> 8);
  p[1] = static_cast<char>(v & 0xff);
}
void Put32(char* p, uint32_t v) {
  p[0] = static_cast<char>(v >> 24);
  p[1] = static_cast<char>((v >> 16) & 0xff);
  p[2] = static_cast<char>((v >> 8) & 0xff);
  p[3] = static_cast<char>(v & 0xff);
}
uint16_t Get16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>((u[0] << 8) | u[1]);
}
uint32_t Get32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}
}  // namespace

void EncodeHeader(const Header& h, char out[kHeaderSize]) {
  Put32(out, h.length);
  Put16(out + 4, h.version);
  Put16(out + 6, h.flags);
  Put16(out + 8, h.service);
  Put16(out + 10, h.command);
  Put32(out + 12, h.seq);
}

Header DecodeHeader(const char in[kHeaderSize]) {
  Header h;
  h.length = Get32(in);
  h.version = Get16(in + 4);
  h.flags = Get16(in + 6);
  h.service = Get16(in + 8);
  h.command = Get16(in + 10);
  h.seq = Get32(in + 12);
  return h;
}

void AppendFrame(std::string* out, uint16_t flags, uint16_t service, uint16_t command, uint32_t seq,
                 std::string_view body) {
  Header h;
  h.length = static_cast<uint32_t>(kHeaderSize + body.size());
  h.flags = flags;
  h.service = service;
  h.command = command;
  h.seq = seq;
  char hdr[kHeaderSize];
  EncodeHeader(h, hdr);
  out->append(hdr, kHeaderSize);
  out->append(body.data(), body.size());
}

}  // namespace imbus::codec
