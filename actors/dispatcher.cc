#include "actors/dispatcher.h"

#include <spdlog/spdlog.h>

#include "actors/db/db.h"
#include "codec/commands.h"

namespace imbus::actors {

using codec::Code;

namespace {
std::string RequestName(const codec::RequestMeta& m) {
  if (const codec::CommandInfo* c = codec::FindCommand(m.service, m.command)) return c->name;
  return std::to_string(m.service) + "/" + std::to_string(m.command);
}
}  // namespace

void Dispatcher::Add(uint16_t wire_service, std::unique_ptr<Service> service) {
  services_[wire_service] = std::move(service);
}

void Dispatcher::HandleRequest(std::string_view meta_bytes, std::string_view body_bytes,
                               std::vector<OutMessage>* out) {
  codec::RequestMeta meta;
  if (!codec::UnpackMeta(meta_bytes, &meta)) {
    spdlog::warn("actor: dropping a REQUEST whose meta is not a RequestMeta");
    return;
  }
  ++handled_;
  Reply reply;
  std::string error_body;
  auto fail = [&](Code code, std::string_view why) {
    reply = Reply{};
    error_body = codec::ErrorBody(code, why);
  };
  try {
    auto it = services_.find(meta.service);
    if (it == services_.end()) {
      throw RequestError(Code::kUnsupported,
                         "this worker does not serve service " + std::to_string(meta.service));
    }
    codec::Body body;
    std::string parse_error;
    if (!codec::Body::Parse(body_bytes, &body, &parse_error)) {
      throw RequestError(Code::kBadRequest, parse_error);
    }
    it->second->Handle(Request{meta, body}, &reply);
  } catch (const RequestError& e) {
    fail(e.code(), e.what());
  } catch (const codec::BadField& e) {
    fail(Code::kBadRequest, e.what());
  } catch (const DbUnavailable& e) {
    spdlog::warn("actor: {} failed: database unavailable ({})", RequestName(meta), e.what());
    fail(Code::kUnavailable, "database unavailable");
  } catch (const std::exception& e) {
    spdlog::error("actor: {} failed: {}", RequestName(meta), e.what());
    fail(Code::kInternal, "internal error");
  } catch (...) {
    spdlog::error("actor: {} failed with an unknown exception", RequestName(meta));
    fail(Code::kInternal, "internal error");
  }

  for (Push& p : reply.pushes) {
    if (p.skip_requester) p.meta.skip_rid = meta.rid;
    out->push_back({codec::BusType::kPush, codec::PackMeta(p.meta), std::move(p.body)});
  }
  codec::ReplyMeta rm;
  rm.rid = meta.rid;
  rm.conn = meta.conn;
  rm.seq = meta.seq;
  rm.service = meta.service;
  rm.command = meta.command;
  rm.action = static_cast<uint8_t>(reply.action);
  rm.session = std::move(reply.session);
  rm.kick_uid = reply.kick_uid;
  rm.kick_reason = std::move(reply.kick_reason);
  std::string body = !error_body.empty()   ? std::move(error_body)
                     : reply.body.empty() ? codec::OkBody()
                                          : std::move(reply.body);
  out->push_back({codec::BusType::kReply, codec::PackMeta(rm), std::move(body)});
}

}  // namespace imbus::actors
