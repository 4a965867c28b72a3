#include "actors/push/push_service.h"

#include <algorithm>

#include "net/clock.h"

namespace imbus::actors::push {

using codec::Code;

Device ParseDevice(const codec::Body& body) {
  Device d;
  d.platform = body.RequireString("platform");
  d.token = body.RequireString("token");
  if (d.platform.empty() || d.token.empty()) {
    throw RequestError(Code::kBadRequest, "platform and token must not be empty");
  }
  if (d.platform.size() > kMaxPlatform) {
    throw RequestError(Code::kTooLarge, "platform is longer than 16 bytes");
  }
  if (d.token.size() > kMaxToken) {
    throw RequestError(Code::kTooLarge, "token is longer than 512 bytes");
  }
  const bool platform_ok = std::all_of(d.platform.begin(), d.platform.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
  if (!platform_ok) throw RequestError(Code::kBadRequest, "platform must be [a-z0-9_-]");
  const bool token_ok =
      std::all_of(d.token.begin(), d.token.end(), [](char c) { return c > ' ' && c < 0x7f; });
  if (!token_ok) throw RequestError(Code::kBadRequest, "token must be printable ASCII");
  return d;
}

PushService::PushService(Db* db, Options options) : store_(db), options_(std::move(options)) {
  if (!options_.now_ms) options_.now_ms = net::WallNowMs;
  Handles(codec::push::kRegisterDevice, &PushService::RegisterDevice);
  Handles(codec::push::kUnregisterDevice, &PushService::UnregisterDevice);
  Handles(codec::push::kSettings, &PushService::Settings);
}

void PushService::RegisterDevice(const Request& req, Reply* reply) {
  store_.RegisterDevice(req.meta.uid, ParseDevice(req.body), options_.now_ms());
  reply->body = OkWriter(0).Finish();
}

void PushService::UnregisterDevice(const Request& req, Reply* reply) {
  const bool removed = store_.UnregisterDevice(req.meta.uid, ParseDevice(req.body));
  OkWriter w(1);
  w.Key("removed").Bool(removed);
  reply->body = w.Finish();
}

void PushService::Settings(const Request& req, Reply* reply) {
  const uint64_t uid = req.meta.uid;
  bool preview;
  if (std::optional<bool> p = req.body.GetBool("preview")) {
    store_.SetPreview(uid, *p);
    preview = *p;
  } else {
    preview = store_.Preview(uid);
  }
  OkWriter w(1);
  w.Key("preview").Bool(preview);
  reply->body = w.Finish();
}

}  // namespace imbus::actors::push
