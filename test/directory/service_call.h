// Test-only. Calls a Service in process the way the actor host does: a RequestMeta
// with the caller's uid and a parsed body, the Dispatcher's login gate first; errors
// come back as codes.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "actors/service.h"
#include "codec/body.h"

namespace imbus::actors::testing {

struct CallResult {
  codec::Code code = codec::Code::kOk;
  std::string error;
  Reply reply;
  codec::Body body;  // parsed reply body (OK only)
};

inline CallResult CallService(Service& service, uint16_t wire_service, uint16_t command,
                              uint64_t uid, const std::string& body,
                              const std::string& device = "default", uint64_t conn = 1) {
  codec::RequestMeta meta;
  meta.conn = conn;
  meta.service = wire_service;
  meta.command = command;
  meta.uid = uid;
  meta.device = device;
  codec::Body parsed;
  std::string error;
  CallResult out;
  if (!codec::Body::Parse(body, &parsed, &error)) {
    ADD_FAILURE() << "bad test body: " << error;
    return out;
  }
  if (LoginMissing(meta)) {  // the Dispatcher's gate, before any service runs
    out.code = codec::Code::kUnauthenticated;
    out.error = kLoginRequired;
    return out;
  }
  try {
    service.Handle(Request{meta, parsed}, &out.reply);
    const std::string reply_body = out.reply.body.empty() ? codec::OkBody() : out.reply.body;
    EXPECT_TRUE(codec::Body::Parse(reply_body, &out.body, &error)) << error;
  } catch (const RequestError& e) {
    out.code = e.code();
    out.error = e.what();
  } catch (const codec::BadField& e) {
    out.code = codec::Code::kBadRequest;
    out.error = e.what();
  }
  return out;
}

inline std::string Uint(const char* key, uint64_t v) {
  codec::MapWriter w(1);
  w.Key(key).Uint(v);
  return w.Finish();
}

}  // namespace imbus::actors::testing
