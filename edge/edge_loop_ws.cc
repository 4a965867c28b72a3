// EdgeLoop, browser side: the WebSocket listeners' connections. They start with
// HTTP/1.1 (the web app's static files, or the upgrade at /ws), then carry WebSocket
// messages of exactly one imbus frame each, which go through HandleFrame like any
// other: sessions, pushes, kicks, limits and timeouts are the same for both kinds.
#include <spdlog/spdlog.h>

#include "codec/body.h"
#include "codec/commands.h"
#include "edge/edge_loop.h"

namespace imbus::edge {

namespace {
// Frames in one message: browsers send one; a flood of empty fragments is refused.
constexpr size_t kMaxFragments = 64;

// The WebSocket close code for closing a connection for `reason` (0: send none).
uint16_t WsCodeFor(CloseReason reason) {
  switch (reason) {
    case CloseReason::kIdle:
    case CloseReason::kShuttingDown:
      return net::kWsGoingAway;
    case CloseReason::kKicked:
      return net::kWsNormal;
    case CloseReason::kBrokenStream:
    case CloseReason::kSlowReader:
      return net::kWsPolicyViolation;
    default:
      return 0;
  }
}
}  // namespace

void EdgeLoop::SendWsClose(Connection& c, CloseReason reason, std::string_view detail) {
  net::WsSession* ws = c.ws();
  const uint16_t code = WsCodeFor(reason);
  if (ws == nullptr || code == 0 || ws->closing() || c.closed() || c.shut_down()) return;
  ws->Close(code, DescribeClose(reason, detail));
  std::string bytes;
  ws->Output(&bytes);
  // Written directly: this may run inside Close, which must not recurse. Whatever
  // does not fit now waits behind the pending output (or goes with the socket).
  if (!c.has_output()) {
    (void)c.Send(bytes, options_.max_output_bytes + bytes.size());
  } else {
    (void)c.Queue(bytes, options_.max_output_bytes + bytes.size());
  }
}

void EdgeLoop::OnHttpInput(Connection& c, const char* data, size_t n, Clock::time_point now) {
  std::string& in = c.http_input();
  in.append(data, n);
  while (!c.closed() && !c.closing() && c.kind() == Connection::Kind::kHttp && !in.empty()) {
    HttpRequest r;
    size_t used = 0;
    std::string error;
    switch (ParseHttpRequest(in, &r, &used, &error)) {
      case HttpParse::kNeedMore:
        return;
      case HttpParse::kTooLarge:
        WriteRaw(c, HttpError(431, "request head over " + std::to_string(kMaxHttpHead) + " bytes"));
        CloseAfterFlush(c, CloseReason::kHttpDone, "431 request head too large");
        return;
      case HttpParse::kBad:
        WriteRaw(c, HttpError(400, error));
        CloseAfterFlush(c, CloseReason::kHttpDone, "400 " + error);
        return;
      case HttpParse::kOk:
        break;
    }
    in.erase(0, used);
    c.Touch(now);
    HandleHttpRequest(c, r, now);
  }
  if (c.kind() == Connection::Kind::kWebSocket && !c.closed()) {
    // Bytes after the upgrade request are the first WebSocket frames.
    std::string rest;
    rest.swap(c.http_input());
    if (!rest.empty()) OnWsInput(c, rest.data(), rest.size(), now);
  } else if (!c.closed() && in.empty()) {
    std::string().swap(in);  // idle keep-alive connections keep no buffer
  }
}

void EdgeLoop::HandleHttpRequest(Connection& c, const HttpRequest& r, Clock::time_point now) {
  (void)now;
  if (IsWsUpgradeRequest(r)) {
    WsUpgrade u = CheckWsUpgrade(r, options_.ws_origins);
    WriteRaw(c, u.response);
    if (u.status != 101) {
      spdlog::info("{}: conn {} from {}:{}: WebSocket upgrade refused: {} {}", log_name_, c.id(),
                   c.peer_host(), c.peer_port(), u.status, u.error);
      CloseAfterFlush(c, CloseReason::kHttpDone, std::to_string(u.status) + " " + u.error);
      return;
    }
    if (c.closed()) return;
    c.StartWebSocket(std::make_unique<net::WsSession>(
        net::WsSession::Role::kServer, net::WsSession::Limits{options_.max_frame, kMaxFragments}));
    spdlog::debug("{}: conn {} from {}:{}: WebSocket open", log_name_, c.id(), c.peer_host(),
                  c.peer_port());
    return;
  }
  const std::string response = ServeStatic(web_, r);
  WriteRaw(c, response);
  // Errors that end the exchange (405) and clients that asked for it close here.
  if (!r.keep_alive() || response.rfind("HTTP/1.1 405", 0) == 0) {
    CloseAfterFlush(c, CloseReason::kHttpDone, r.method + " " + r.path);
  }
}

void EdgeLoop::OnWsInput(Connection& c, const char* data, size_t n, Clock::time_point now) {
  net::WsSession* ws = c.ws();
  std::vector<net::WsSession::Message> messages;
  const bool ok = ws->Feed(data, n, &messages);
  // What the framing answers by itself: pongs, the echo of a close, an error's close.
  ws_out_.clear();
  ws->Output(&ws_out_);
  if (!ws_out_.empty()) WriteRaw(c, ws_out_);
  if (c.closed()) return;
  auto fail = [&](uint16_t code, const std::string& why) {
    c.ws()->Close(code, why);
    ws_out_.clear();
    c.ws()->Output(&ws_out_);
    WriteRaw(c, ws_out_);
    CloseAfterFlush(c, CloseReason::kWsError, why);
  };
  // Pings are client traffic like frames: they keep the connection alive and count
  // against its request rate (a ping flood is closed with 1008).
  for (uint64_t pings = ws->TakePings(); pings > 0 && !c.closing(); --pings) {
    c.Touch(now);
    const codec::CommandInfo* ping =
        codec::FindCommand(codec::ToWire(codec::Service::kSys), codec::sys::kPing);
    if (!admission_.AdmitRequest(c, ping, now).admitted) {
      fail(net::kWsPolicyViolation, "ping flood: over the connection's request rate");
      return;
    }
  }
  for (const net::WsSession::Message& m : messages) {
    if (c.closed() || c.closing()) return;
    if (m.type == net::WsSession::MessageType::kText) {
      fail(net::kWsUnsupportedData, "text message: send each frame as one binary message");
      return;
    }
    c.decoder().Feed(m.data.data(), m.data.size());
    codec::Frame frame;
    const auto status = c.decoder().Next(&frame);
    if (status != codec::FrameDecoder::Status::kFrame || c.decoder().buffered() != 0) {
      const std::string why = status == codec::FrameDecoder::Status::kBroken ? c.decoder().error()
                              : status == codec::FrameDecoder::Status::kNeedMore
                                  ? "a message holding part of a frame"
                                  : "a message holding more than one frame";
      spdlog::info("{}: conn {} from {}:{}: broken WebSocket message: {}", log_name_, c.id(),
                   c.peer_host(), c.peer_port(), why);
      EdgeStats::Add(stats_->closed_broken);
      WriteSysError(c, codec::ErrorBody(codec::Code::kBadRequest, why));
      if (!c.closed()) CloseAfterFlush(c, CloseReason::kBrokenStream, why);
      return;
    }
    HandleFrame(c, frame, now);
    if (!c.closed()) c.decoder().ShrinkIfEmpty();
  }
  if (c.closed() || c.closing()) return;
  if (!ok) {
    CloseAfterFlush(c, CloseReason::kWsError, ws->error());
  } else if (ws->close_received()) {
    CloseAfterFlush(c, CloseReason::kWsClosedByPeer);
  }
}

}  // namespace imbus::edge
