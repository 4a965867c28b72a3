// EdgeLoop, bus side: the BusPeer's fd in epoll, replies, pushes, kicks and the
// session bindings kept in step with the broker.
#include <sys/epoll.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "codec/body.h"
#include "codec/commands.h"
#include "edge/edge_loop.h"

namespace imbus::edge {

void EdgeLoop::SyncBusFd() {
  const int fd = peer_->fd();
  if (fd == bus_fd_) return;
  // A reconnect closed the old socket (and with it its epoll registration); the new
  // fd may even reuse the old number, hence MOD on EEXIST.
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = kBusTag;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0 &&
      (errno != EEXIST || ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0)) {
    spdlog::error("{}: epoll_ctl(bus fd {}): {}", log_name_, fd, std::strerror(errno));
  }
  bus_fd_ = fd;
}

void EdgeLoop::DrainBus() {
  bus::BusMessage m;
  for (;;) {
    // Frames for clients are queued while the burst is read and written after it:
    // one send(2) per connection per burst.
    corked_ = true;
    while (peer_->TryRecv(&m)) OnBusMessage(m);
    corked_ = false;
    // A failed write closes its connection, and closing a logged-in one sends UNBIND
    // on the bus: read again after that, as after any send (the ZMQ_FD edge).
    if (!FlushQueued()) return;
  }
}

bool EdgeLoop::FlushQueued() {
  bool closed_any = false;
  const auto now = Clock::now();
  for (uint64_t id : to_flush_) {
    Connection* c = Find(id);
    if (c == nullptr) continue;
    c->set_flush_listed(false);
    if (c->closed()) continue;
    if (c->Flush() != Connection::WriteResult::kOk) {
      Close(*c, "write error (peer gone)");
      closed_any = true;
      continue;
    }
    FinishIfFlushed(*c, now);
  }
  to_flush_.clear();
  return closed_any;
}

void EdgeLoop::OnBusMessage(bus::BusMessage& m) {
  switch (m.type) {
    case codec::BusType::kReply:
      OnReply(m);
      return;
    case codec::BusType::kPush:
      OnPush(m);
      return;
    case codec::BusType::kKick:
      OnKick(m);
      return;
    default:
      spdlog::warn("{}: bus: unexpected message type {} from broker; dropped", log_name_,
                   static_cast<int>(m.type));
  }
}

void EdgeLoop::OnReply(bus::BusMessage& m) {
  codec::ReplyMeta meta;
  if (!codec::UnpackMeta(m.meta, &meta)) {
    spdlog::warn("{}: bus: malformed REPLY meta; dropped", log_name_);
    return;
  }
  const bool in_time = tracker_.Complete(meta.conn, meta.seq);
  if (!pending_logins_.empty()) NoteLoginReply(meta.conn, meta.seq, m.body);
  const auto action = static_cast<codec::SessionAction>(meta.action);
  Connection* c = Find(meta.conn);
  if (c == nullptr) {
    // The broker just bound a connection that is gone: undo it.
    if (action == codec::SessionAction::kLogin) SendUnbind(meta.conn);
    return;
  }
  // The session action is applied even to a late reply: the broker applied it too,
  // and the two must agree on who is logged in where.
  if (action == codec::SessionAction::kLogin) {
    codec::SessionInfo s = std::move(meta.session);
    if (s.public_host.empty()) {
      s.public_host = c->peer_host();
      s.public_port = c->peer_port();
    }
    c->LogIn(std::move(s));
  } else if (action == codec::SessionAction::kLogout) {
    c->LogOut();
  }
  if (!in_time) {
    spdlog::debug("{}: conn {} seq {}: late reply dropped (already answered)", log_name_, meta.conn,
                  meta.seq);
    return;
  }
  WriteFrame(*c, codec::kFlagResponse, meta.service, meta.command, meta.seq, m.body);
}

void EdgeLoop::OnPush(bus::BusMessage& m) {
  codec::EdgePushMeta meta;
  if (!codec::UnpackMeta(m.meta, &meta)) {
    spdlog::warn("{}: bus: malformed PUSH meta; dropped", log_name_);
    return;
  }
  // Encoded once for every target; WriteFrame would reuse scratch_, so keep a copy.
  std::string frame;
  codec::AppendFrame(&frame, codec::kFlagPush, meta.service, meta.command, 0, m.body);
  for (uint64_t id : meta.conns) {
    Connection* c = Find(id);
    if (c == nullptr || c->closing()) continue;
    EdgeStats::Add(stats_->pushes);
    WriteEncoded(*c, frame);
  }
}

void EdgeLoop::OnKick(bus::BusMessage& m) {
  codec::KickMeta meta;
  if (!codec::UnpackMeta(m.meta, &meta)) {
    spdlog::warn("{}: bus: malformed KICK meta; dropped", log_name_);
    return;
  }
  Connection* c = Find(meta.conn);
  if (c == nullptr || c->closing()) return;
  EdgeStats::Add(stats_->kicked);
  // The broker already forgot this session: no UNBIND.
  c->LogOut();
  codec::MapWriter w(1);
  w.Key("reason").Str(meta.reason);
  WriteFrame(*c, codec::kFlagPush, codec::ToWire(codec::Service::kAuth), codec::auth::kKicked, 0,
             w.Finish());
  if (!c->closed()) CloseAfterFlush(*c, "kicked: " + meta.reason);
}

void EdgeLoop::OnBusConnected(uint64_t bound_at) {
  size_t n = 0;
  for (auto& [id, c] : conns_) {
    if (!c->logged_in() || c->closed()) continue;
    peer_->Send(codec::BusType::kBind,
                codec::PackMeta(codec::BindMeta{id, c->session(), bound_at}));
    ++n;
  }
  // Closed while the broker we were announced to may not have read the UNBIND.
  // Chunked: one bus message stays far below the broker's 4 MiB limit.
  constexpr size_t kChunk = 4096;
  const size_t departed = departed_.size();
  codec::DepartedMeta d;
  d.bound_at = bound_at;
  for (size_t i = 0; i < departed_.size(); ++i) {
    d.sessions.push_back({departed_[i].conn, departed_[i].uid});
    if (d.sessions.size() == kChunk || i + 1 == departed_.size()) {
      peer_->Send(codec::BusType::kDeparted, codec::PackMeta(d));
      d.sessions.clear();
    }
  }
  // Kept (and sent again after the next READY) until a broker that accepted us has
  // surely read them: this READY may have gone to a broker that turns us away.
  spdlog::info("{}: bus: announced to broker {} as {}; re-bound {} sessions, {} departed",
               log_name_, peer_->endpoint(), peer_->identity(), n, departed);
}

void EdgeLoop::OnBrokerLost() {
  const size_t n = tracker_.outstanding();
  tracker_.FailAll([this](const RequestTracker::Request& r) {
    AnswerUnavailable(r, "the broker went away; retry");
  });
  if (n > 0) {
    spdlog::warn("{}: bus: {} requests in flight answered UNAVAILABLE (broker lost)", log_name_, n);
  }
}

void EdgeLoop::AnswerUnavailable(const RequestTracker::Request& r, std::string_view why) {
  ForgetLogin(r.conn, r.seq);
  Connection* c = Find(r.conn);
  if (c == nullptr) return;
  spdlog::debug("{}: conn {} seq {}: {}", log_name_, r.conn, r.seq, why);
  codec::Header h;
  h.service = r.service;
  h.command = r.command;
  h.seq = r.seq;
  Respond(*c, h, codec::ErrorBody(codec::Code::kUnavailable, why));
}

void EdgeLoop::PruneDeparted() {
  // The broker handles what it reads in order and heartbeats after each batch: a word
  // from it well after an UNBIND (two intervals of margin for a backlog) means it read
  // it. A DEPARTED it read takes its settle time (liveness intervals) to be acted on;
  // if that broker dies first, the next one must hear of them too: 2 + 3 intervals.
  const auto seen_before =
      peer_->last_served() - 5 * std::chrono::milliseconds(options_.heartbeat_ms);
  while (!departed_.empty() && departed_.front().at < seen_before) departed_.pop_front();
}

void EdgeLoop::SendUnbind(uint64_t conn) {
  if (!peer_->Send(codec::BusType::kUnbind, codec::PackMeta(codec::UnbindMeta{conn}))) {
    spdlog::warn("{}: bus: could not send UNBIND for conn {}", log_name_, conn);
  }
}

}  // namespace imbus::edge
