// Test-only. What the service fuzz targets share: the input layout and a Call that
// runs one request the way the actor host does and checks what may come out.
//
// Input layout (every service target): byte 0 picks the command, byte 1 the caller
// (see Caller), the rest is the request body as the client sent it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "actors/service.h"
#include "codec/body.h"
#include "codec/codes.h"
#include "codec/utf8.h"

namespace imbus::fuzz {

// Aborts (a libFuzzer crash) with a message when an invariant does not hold.
#define IMBUS_FUZZ_CHECK(cond)                                                          \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

#define IMBUS_FUZZ_FAIL(what)                                      \
  do {                                                             \
    std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, what); \
    std::abort();                                                  \
  } while (0)

struct Input {
  uint8_t command = 0;
  uint8_t caller = 0;
  std::string_view body;
};

// False when the input is too short to hold the two selector bytes.
inline bool SplitInput(const uint8_t* data, size_t size, Input* out) {
  if (size < 2) return false;
  out->command = data[0];
  out->caller = data[1];
  out->body = std::string_view(reinterpret_cast<const char*>(data) + 2, size - 2);
  return true;
}

// The request metadata the edge would set: uid = caller & 3 (0: not logged in),
// conn = 0 when bit 2 is set (the broker's internal requests), else 1; device from
// bits 3-4.
inline codec::RequestMeta Caller(uint16_t service, uint16_t command, uint8_t caller) {
  codec::RequestMeta meta;
  meta.service = service;
  meta.command = command;
  meta.uid = caller & 3u;
  meta.conn = (caller & 4u) != 0 ? 0 : 1;
  static const char* const kDevices[] = {"default", "phone", "", "laptop"};
  meta.device = kDevices[(caller >> 3) & 3u];
  meta.peer_host = "127.0.0.1";
  meta.peer_port = 40000;
  return meta;
}

// True when every msgpack str in `o`, keys included, is UTF-8: what the server sends
// must decode in every client language, whatever bytes a client sent it.
inline bool AllStringsUtf8(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::STR:
      return codec::IsValidUtf8(std::string_view(o.via.str.ptr, o.via.str.size));
    case msgpack::type::ARRAY:
      for (uint32_t i = 0; i < o.via.array.size; ++i) {
        if (!AllStringsUtf8(o.via.array.ptr[i])) return false;
      }
      return true;
    case msgpack::type::MAP:
      for (uint32_t i = 0; i < o.via.map.size; ++i) {
        if (!AllStringsUtf8(o.via.map.ptr[i].key) || !AllStringsUtf8(o.via.map.ptr[i].val)) {
          return false;
        }
      }
      return true;
    default:
      return true;
  }
}

struct Outcome {
  codec::Code code = codec::Code::kOk;
  actors::Reply reply;
  codec::Body body;  // the parsed OK body
};

// Runs service.Handle like the actor host. Only RequestError and codec::BadField may
// leave Handle (anything else propagates: libFuzzer reports it). An error code is a
// real, non-OK one and never INTERNAL; an OK body is a msgpack map with code 0; every
// str sent back (body, pushes, error text) is UTF-8.
inline Outcome Call(actors::Service& service, const codec::RequestMeta& meta,
                    const codec::Body& body) {
  Outcome out;
  if (actors::LoginMissing(meta)) {  // the Dispatcher's gate, before any service runs
    out.code = codec::Code::kUnauthenticated;
    return out;
  }
  try {
    const actors::Request req{meta, body};
    service.Handle(req, &out.reply);
    actors::FinishInline(req, &out.reply);  // what the host's offload pool would run
  } catch (const actors::RequestError& e) {
    out.code = e.code();
    IMBUS_FUZZ_CHECK(out.code != codec::Code::kOk);
    // INTERNAL is for a failed server part, never for what a client sent.
    IMBUS_FUZZ_CHECK(out.code != codec::Code::kInternal);
    IMBUS_FUZZ_CHECK(codec::IsValidUtf8(e.what()));  // the answer's `error`
    IMBUS_FUZZ_CHECK(std::string_view(codec::CodeName(static_cast<int>(out.code))) != "UNKNOWN");
    return out;
  } catch (const codec::BadField&) {
    out.code = codec::Code::kBadRequest;
    return out;
  }
  const std::string reply = out.reply.body.empty() ? codec::OkBody() : out.reply.body;
  std::string error;
  IMBUS_FUZZ_CHECK(codec::Body::Parse(reply, &out.body, &error));
  IMBUS_FUZZ_CHECK(out.body.GetInt("code") == 0);
  IMBUS_FUZZ_CHECK(AllStringsUtf8(out.body.root()));
  for (const actors::Push& p : out.reply.pushes) {
    codec::Body pushed;
    IMBUS_FUZZ_CHECK(codec::Body::Parse(p.body, &pushed, &error));
    IMBUS_FUZZ_CHECK(AllStringsUtf8(pushed.root()));
  }
  return out;
}

}  // namespace imbus::fuzz
