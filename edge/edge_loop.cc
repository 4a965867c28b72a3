// EdgeLoop: the epoll loop, accepting (plain and TLS), reading frames, answering
// what the edge answers itself, forwarding the rest through the BrokerLink, writing
// the broker's replies and pushes, and closing.
#include "edge/edge_loop.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "codec/body.h"
#include "codec/commands.h"
#include "net/clock.h"
#include "net/tls_error.h"

namespace imbus::edge {

namespace {
constexpr int kMaxEvents = 256;
constexpr int kWaitMs = 100;                           // timers run at least this often
constexpr auto kCloseGrace = std::chrono::seconds(2);  // for a peer that never reads or closes
constexpr auto kSweepEvery = std::chrono::seconds(1);
constexpr size_t kReadChunk = 64 * 1024;

}  // namespace

EdgeLoop::EdgeLoop(int index, const EdgeOptions& options, Listener listener, zmq::context_t& ctx,
                   EdgeStats* stats, IpLimits* ip_limits, FileBudget* file_budget)
    : log_name_(options.name + "/" + std::to_string(index)),
      options_(options),
      stats_(stats),
      listener_(std::move(listener)),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      admission_(log_name_, options, stats, ip_limits, file_budget),
      tracker_(std::chrono::milliseconds(options.request_timeout_ms)),
      next_sweep_(Clock::now() + kSweepEvery) {
  if (!epoll_.valid()) {
    throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = kListenerTag;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener_.fd(), &ev) != 0) {
    throw std::runtime_error(std::string("epoll_ctl(listener): ") + std::strerror(errno));
  }
  BrokerLink::Handler* handler = this;
  link_ = std::make_unique<BrokerLink>(log_name_, options, ctx, epoll_.get(), kBusTag, handler);
}

EdgeLoop::~EdgeLoop() = default;

void EdgeLoop::AddListener(const Listener& listener, uint64_t tag, const char* what) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = tag;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener.fd(), &ev) != 0) {
    throw std::runtime_error(std::string("epoll_ctl(") + what + "): " + std::strerror(errno));
  }
}

void EdgeLoop::AddTlsListener(Listener listener, const TlsContext* tls) {
  tls_listener_.emplace(std::move(listener));
  tls_ = tls;
  AddListener(*tls_listener_, kTlsListenerTag, "TLS listener");
}

void EdgeLoop::AddWsListeners(std::optional<Listener> ws, std::optional<Listener> wss,
                              const TlsContext* tls, const StaticFiles* web) {
  web_ = web;
  if (ws) {
    ws_listener_.emplace(std::move(*ws));
    AddListener(*ws_listener_, kWsListenerTag, "WebSocket listener");
  }
  if (wss) {
    wss_listener_.emplace(std::move(*wss));
    tls_ = tls;
    AddListener(*wss_listener_, kWssListenerTag, "wss:// listener");
  }
}

void EdgeLoop::Run(const std::atomic<bool>& stop) {
  epoll_event events[kMaxEvents];
  while (!stop.load(std::memory_order_relaxed)) {
    const int n = ::epoll_wait(epoll_.get(), events, kMaxEvents, kWaitMs);
    if (n < 0 && errno != EINTR) {
      spdlog::error("{}: epoll_wait: {}", log_name_, std::strerror(errno));
      break;
    }
    const auto now = Clock::now();
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kListenerTag) {
        OnAccept(listener_, false, false, now);
      } else if (tag == kTlsListenerTag) {
        OnAccept(*tls_listener_, true, false, now);
      } else if (tag == kWsListenerTag) {
        OnAccept(*ws_listener_, false, true, now);
      } else if (tag == kWssListenerTag) {
        OnAccept(*wss_listener_, true, true, now);
      } else if (tag == kBusTag) {
        // Drained below, after every iteration.
      } else if (Connection* c = Find(tag)) {
        OnConnectionEvent(*c, events[i].events, now);
      }
    }
    tracker_.Expire(now, [this](const RequestTracker::Request& r) {
      EdgeStats::Add(stats_->timeouts);
      AnswerUnavailable(r, "no reply in time; retry");
    });
    if (now >= next_sweep_) {
      SweepIdle(now);
      link_->PruneDeparted();
      next_sweep_ = now + kSweepEvery;
    }
    link_->Tick(static_cast<uint32_t>(conns_.size()));
    // Last: a send may have consumed the ZMQ_FD edge, so read until empty every time
    // and send nothing after it in this iteration.
    link_->Drain();
    graveyard_.clear();
  }
  std::vector<uint64_t> ids;
  for (auto& [id, c] : conns_) ids.push_back(id);
  for (uint64_t id : ids) Close(*conns_.at(id), CloseReason::kShuttingDown);
  graveyard_.clear();
  spdlog::info("{}: stopped", log_name_);
}

Connection* EdgeLoop::Find(uint64_t conn) {
  auto it = conns_.find(conn);
  return it == conns_.end() ? nullptr : it->second.get();
}

void EdgeLoop::OnAccept(Listener& listener, bool tls, bool http, Clock::time_point now) {
  for (;;) {
    net::UniqueFd fd;
    std::string host;
    uint16_t port = 0;
    const Listener::Result r = listener.Accept(&fd, &host, &port);
    if (r == Listener::Result::kAgain || r == Listener::Result::kError) return;
    if (r == Listener::Result::kDropped) continue;
    SslPtr ssl;
    if (tls) {
      ssl = tls_->NewSession(fd.get());
      if (!ssl) {
        spdlog::error("{}: TLS session for {}:{}: {}", log_name_, host, port,
                      net::TlsErrorText("SSL_new failed"));
        continue;
      }
    }
    const uint64_t id = next_conn_id_++;
    epoll_event ev{};
    // Registered once for both directions: with EPOLLET, EPOLLOUT only fires when
    // the socket becomes writable again, which is when pending output can move.
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = id;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
      spdlog::error("{}: epoll_ctl(conn): {}", log_name_, std::strerror(errno));
      continue;
    }
    spdlog::debug("{}: conn {} opened from {}:{}{}{}", log_name_, id, host, port,
                  tls ? " (TLS)" : "", http ? " (HTTP/WebSocket)" : "");
    auto c = std::make_unique<Connection>(id, std::move(fd), options_.max_frame, std::move(host),
                                          port, now);
    Connection& added = *c;
    // The handshake starts on the first event (EPOLLOUT fires at once when added).
    if (tls) c->StartTls(std::move(ssl));
    if (http) c->StartHttp();
    conns_.emplace(id, std::move(c));
    EdgeStats::Add(stats_->accepted);
    EdgeStats::Add(stats_->connections);
    const int transport = TransportIndex(tls, http);
    EdgeStats::Add(stats_->accepted_by_transport[transport]);
    EdgeStats::Add(stats_->open_by_transport[transport]);
    const Verdict v = admission_.AdmitConnection(added, now);
    if (v.admitted) continue;
    if (http) {
      WriteRaw(added, HttpError(429, v.message, {{"Retry-After", "5"}}));
    } else {
      WriteSysError(added, codec::ErrorBody(codec::Code::kRateLimited, v.message));
    }
    if (added.closed()) continue;
    // Like CloseAfterFlush, without its log line per connection (a flood would fill
    // the log): the error goes out, then FIN, then up to the grace for the peer's EOF.
    added.set_closing();
    FinishIfFlushed(added);
  }
}

void EdgeLoop::OnConnectionEvent(Connection& c, uint32_t events, Clock::time_point now) {
  if (c.tls()) {
    OnTlsEvent(c, now);
    return;
  }
  if ((events & EPOLLOUT) != 0 && c.has_output()) {
    if (c.Flush() != Connection::WriteResult::kOk) {
      Close(c, CloseReason::kWriteError);
      return;
    }
    FinishIfFlushed(c);
  }
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0 && !c.closed()) {
    ReadInput(c, now, (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) == 0);
  }
}

void EdgeLoop::OnTlsEvent(Connection& c, Clock::time_point now) {
  // TLS may need the socket the other way round (a handshake step or SSL_read that
  // must write, an SSL_write that must read), and with EPOLLET an edge is not
  // repeated: so every event retries the handshake, the output and the input.
  // A handshake that never finishes is closed by SweepIdle like any silent client.
  // After the handshake a TLS connection goes through the same ReadInput and
  // WriteEncoded paths as a plain one (Connection hides SSL_read/SSL_write).
  if (c.handshaking()) {
    switch (c.ContinueHandshake()) {
      case Connection::HandshakeResult::kAgain:
        return;
      case Connection::HandshakeResult::kError:
        Close(c, CloseReason::kTlsHandshakeFailed,
              net::TlsErrorText("connection closed during the handshake"));
        return;
      case Connection::HandshakeResult::kDone:
        spdlog::debug("{}: conn {} from {}:{}: TLS established ({})", log_name_, c.id(),
                      c.peer_host(), c.peer_port(), c.TlsDescription());
        break;
    }
  }
  if (c.has_output()) {
    if (c.Flush() != Connection::WriteResult::kOk) {
      Close(c, CloseReason::kWriteError);
      return;
    }
    FinishIfFlushed(c);
  }
  if (!c.closed()) ReadInput(c, now);
}

void EdgeLoop::OnFrameInput(Connection& c, const char* data, size_t n, Clock::time_point now) {
  c.decoder().Feed(data, n);
  codec::Frame frame;
  for (;;) {
    const auto status = c.decoder().Next(&frame);
    if (status == codec::FrameDecoder::Status::kNeedMore) break;
    if (status == codec::FrameDecoder::Status::kBroken) {
      spdlog::info("{}: conn {} from {}:{}: broken stream: {}", log_name_, c.id(), c.peer_host(),
                   c.peer_port(), c.decoder().error());
      EdgeStats::Add(stats_->closed_broken);
      WriteSysError(c, codec::ErrorBody(codec::Code::kBadRequest, c.decoder().error()));
      CloseAfterFlush(c, CloseReason::kBrokenStream);
      break;
    }
    HandleFrame(c, frame, now);
    if (c.closed() || c.closing()) break;
  }
  if (!c.closed()) c.decoder().ShrinkIfEmpty();
}

void EdgeLoop::ReadInput(Connection& c, Clock::time_point now, bool short_read_drains) {
  char buf[kReadChunk];
  short_read_drains = short_read_drains && !c.tls();  // SSL_read may hold decrypted bytes
  while (!c.closed()) {
    const ssize_t n = c.Receive(buf, sizeof(buf));
    if (n > 0) {
      EdgeStats::Add(stats_->bytes_in, static_cast<uint64_t>(n));
      if (!c.closing()) {  // ending the stream: input is discarded
        switch (c.kind()) {
          case Connection::Kind::kFrames:
            OnFrameInput(c, buf, static_cast<size_t>(n), now);
            break;
          case Connection::Kind::kHttp:
            OnHttpInput(c, buf, static_cast<size_t>(n), now);
            break;
          case Connection::Kind::kWebSocket:
            OnWsInput(c, buf, static_cast<size_t>(n), now);
            break;
        }
      }
      if (short_read_drains && static_cast<size_t>(n) < sizeof(buf)) return;
    } else if (n == 0) {
      Close(c, c.closing() ? CloseReason::kAfterFinalOutput : CloseReason::kPeerClosed);
      return;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return;
    } else if (errno == EPROTO && c.tls()) {
      Close(c, CloseReason::kTlsError, net::TlsErrorText("protocol error"));
      return;
    } else {
      Close(c, CloseReason::kReadError, std::strerror(errno));
      return;
    }
  }
}

void EdgeLoop::HandleFrame(Connection& c, const codec::Frame& frame, Clock::time_point now) {
  EdgeStats::Add(stats_->requests);
  c.Touch(now);
  const codec::Header& h = frame.header;
  const codec::CommandInfo* info = codec::FindCommand(h.service, h.command);
  if (const Verdict v =
          admission_.AdmitRequest(c, info, now, frame.body.size() + codec::kHeaderSize);
      !v.admitted) {
    RespondRefused(c, h, v);
    return;
  }
  codec::Body body;
  std::string error;
  if (!codec::Body::Parse(frame.body, &body, &error)) {
    Respond(c, h, codec::ErrorBody(codec::Code::kBadRequest, error));
    return;
  }
  if (info == nullptr || info->kind != codec::Kind::kRequest ||
      info->service == codec::Service::kP2p) {
    Respond(c, h,
            codec::ErrorBody(codec::Code::kUnsupported, "unsupported command " +
                                                            std::to_string(h.service) + "/" +
                                                            std::to_string(h.command)));
    return;
  }
  if (info->needs_login && !c.logged_in()) {
    Respond(
        c, h,
        codec::ErrorBody(codec::Code::kUnauthenticated, std::string(info->name) + " needs login"));
    return;
  }
  if (info->service == codec::Service::kSys && h.command == codec::sys::kPing) {
    codec::MapWriter w(2);
    w.Key("code").Int(0);
    w.Key("ts").Int(net::WallNowMs());
    Respond(c, h, w.Finish());
    return;
  }
  if (info->service == codec::Service::kSys && h.command == codec::sys::kHello) {
    codec::MapWriter w(5);
    w.Key("code").Int(0);
    w.Key("server").Str("imbus-edge");
    w.Key("version").Uint(codec::kProtocolVersion);
    w.Key("max_frame").Uint(options_.max_frame);
    w.Key("idle_timeout_s").Int(options_.idle_timeout_s);
    Respond(c, h, w.Finish());
    return;
  }
  // Every command that checks a password or a token counts for the address.
  const bool login = info->rate == codec::RateClass::kCredentials;
  if (login) {
    if (const Verdict v = admission_.AdmitLogin(c, now); !v.admitted) {
      RespondRefused(c, h, v);
      return;
    }
  }
  if (Forward(c, frame, now) && login) admission_.NoteLoginForwarded(c, h, body);
}

bool EdgeLoop::Forward(Connection& c, const codec::Frame& frame, Clock::time_point now) {
  const codec::Header& h = frame.header;
  if (!link_->broker_alive()) {
    Respond(c, h, codec::ErrorBody(codec::Code::kUnavailable, "broker unreachable; retry"));
    return false;
  }
  if (!busy_.empty()) {
    if (auto b = busy_.find(h.service); b != busy_.end()) {
      if (now < b->second.until) {
        EdgeStats::Add(stats_->busy);
        Respond(c, h, b->second.body);
        return false;
      }
      busy_.erase(b);
    }
  }
  codec::RequestMeta meta;
  meta.conn = c.id();
  meta.seq = h.seq;
  meta.service = h.service;
  meta.command = h.command;
  if (c.logged_in()) {
    meta.uid = c.session().uid;
    meta.device = c.session().device;
  }
  meta.peer_host = c.peer_host();
  meta.peer_port = c.peer_port();
  // The tracker answers UNAVAILABLE at the same moment: past it no one waits for the
  // work, so the broker and the actor drop the request instead of doing it.
  meta.deadline_ms = net::WallNowMs() + options_.request_timeout_ms;
  if (!link_->SendRequest(meta, frame.body)) {
    Respond(c, h, codec::ErrorBody(codec::Code::kUnavailable, "broker queue full; retry"));
    return false;
  }
  EdgeStats::Add(stats_->forwarded);
  tracker_.Add(RequestTracker::Request{c.id(), h.seq, h.service, h.command}, now);
  return true;
}

void EdgeLoop::Respond(Connection& c, const codec::Header& request, std::string_view body) {
  request_metrics_.CountResponse(request.service, request.command, body);
  WriteFrame(c, codec::kFlagResponse, request.service, request.command, request.seq, body);
}

void EdgeLoop::RespondRefused(Connection& c, const codec::Header& request, const Verdict& v) {
  Respond(c, request, codec::RateLimitedBody(v.retry_ms, v.message));
}

void EdgeLoop::WriteFrame(Connection& c, uint16_t flags, uint16_t service, uint16_t command,
                          uint32_t seq, std::string_view body) {
  scratch_.clear();
  codec::AppendFrame(&scratch_, flags, service, command, seq, body);
  WriteEncoded(c, scratch_);
}

void EdgeLoop::WriteSysError(Connection& c, std::string_view body) {
  WriteFrame(c, /*flags=*/0, codec::ToWire(codec::Service::kSys), codec::sys::kError, /*seq=*/0,
             body);
}

void EdgeLoop::WriteEncoded(Connection& c, std::string_view bytes) {
  EdgeStats::Add(stats_->frames_out);
  if (c.kind() == Connection::Kind::kWebSocket) {
    // One frame, one binary message.
    if (c.closed() || c.shut_down() || !c.ws()->SendMessage(bytes)) return;
    ws_out_.clear();
    c.ws()->Output(&ws_out_);
    WriteRaw(c, ws_out_);
    return;
  }
  WriteRaw(c, bytes);
}

void EdgeLoop::WriteRaw(Connection& c, std::string_view bytes) {
  if (c.closed() || c.shut_down()) return;
  EdgeStats::Add(stats_->bytes_out, bytes.size());
  const Connection::WriteResult result = corked_ ? c.Queue(bytes, options_.max_output_bytes)
                                                 : c.Send(bytes, options_.max_output_bytes);
  switch (result) {
    case Connection::WriteResult::kOk:
      if (corked_ && c.has_output() && !c.flush_listed()) {
        c.set_flush_listed(true);
        to_flush_.push_back(c.id());
      }
      if (c.pending_output() > stats_->peak_output.load(std::memory_order_relaxed)) {
        stats_->peak_output.store(c.pending_output(), std::memory_order_relaxed);
      }
      return;
    case Connection::WriteResult::kSlowReader:
      EdgeStats::Add(stats_->closed_slow_reader);
      Close(c, CloseReason::kSlowReader,
            "pending output over " + std::to_string(options_.max_output_bytes) + " bytes");
      return;
    case Connection::WriteResult::kError:
      Close(c, CloseReason::kWriteError);
      return;
  }
}

void EdgeLoop::CloseAfterFlush(Connection& c, CloseReason reason, std::string_view detail) {
  if (c.closed() || c.closing()) return;
  if (IsQuietClose(reason)) {
    spdlog::debug("{}: conn {} from {}:{}: closing after output: {}", log_name_, c.id(),
                  c.peer_host(), c.peer_port(), DescribeClose(reason, detail));
  } else {
    spdlog::info("{}: conn {} from {}:{}: closing after output: {}", log_name_, c.id(),
                 c.peer_host(), c.peer_port(), DescribeClose(reason, detail));
  }
  SendWsClose(c, reason, detail);
  if (c.closed()) return;
  c.set_closing();
  c.Touch(Clock::now());  // starts the grace period
  FinishIfFlushed(c);
}

void EdgeLoop::FinishIfFlushed(Connection& c) {
  if (!c.closing() || c.closed() || c.has_output() || c.shut_down()) return;
  // FIN after the last byte, then wait for the peer's EOF before closing: closing
  // with unread input would send RST and could destroy the answer in flight.
  c.ShutdownWrite();
}

void EdgeLoop::Close(Connection& c, CloseReason reason, std::string_view detail) {
  if (c.closed()) return;
  // A WebSocket closed now still says why, if the socket takes it at once.
  if (c.kind() == Connection::Kind::kWebSocket) SendWsClose(c, reason, detail);
  if (c.logged_in()) link_->Depart(c.id(), c.session().uid);
  admission_.Release(c);
  if (IsQuietClose(reason)) {
    spdlog::debug("{}: conn {} from {}:{} closed: {}", log_name_, c.id(), c.peer_host(),
                  c.peer_port(), DescribeClose(reason, detail));
  } else {
    spdlog::info("{}: conn {} from {}:{} closed: {}", log_name_, c.id(), c.peer_host(),
                 c.peer_port(), DescribeClose(reason, detail));
  }
  // Before CloseSocket, which drops the TLS session.
  const int transport = TransportIndex(c.tls(), c.kind() != Connection::Kind::kFrames);
  c.CloseSocket();  // also leaves the epoll set
  EdgeStats::Add(stats_->closed);
  stats_->connections.fetch_sub(1, std::memory_order_relaxed);
  stats_->open_by_transport[transport].fetch_sub(1, std::memory_order_relaxed);
  auto it = conns_.find(c.id());
  if (it != conns_.end()) {
    graveyard_.push_back(std::move(it->second));
    conns_.erase(it);
  }
}

void EdgeLoop::SweepIdle(Clock::time_point now) {
  const auto idle = std::chrono::seconds(options_.idle_timeout_s);
  std::vector<Connection*> expired;
  for (auto& [id, c] : conns_) {
    const auto silent = now - c->last_activity();
    if (c->closing() ? silent >= kCloseGrace : silent >= idle) expired.push_back(c.get());
  }
  for (Connection* c : expired) {
    if (c->closing()) {
      Close(*c, CloseReason::kCloseGraceExpired);
    } else {
      EdgeStats::Add(stats_->closed_idle);
      Close(*c, CloseReason::kIdle, std::to_string(options_.idle_timeout_s) + " s");
    }
  }
}

void EdgeLoop::AnswerUnavailable(const RequestTracker::Request& r, std::string_view why) {
  admission_.ForgetLogin(r.conn, r.seq);
  Connection* c = Find(r.conn);
  if (c == nullptr) return;
  spdlog::debug("{}: conn {} seq {}: {}", log_name_, r.conn, r.seq, why);
  codec::Header h;
  h.service = r.service;
  h.command = r.command;
  h.seq = r.seq;
  Respond(*c, h, codec::ErrorBody(codec::Code::kUnavailable, why));
}

bool EdgeLoop::EndBurst() {
  corked_ = false;
  bool closed_any = false;
  for (uint64_t id : to_flush_) {
    Connection* c = Find(id);
    if (c == nullptr) continue;
    c->set_flush_listed(false);
    if (c->closed()) continue;
    if (c->Flush() != Connection::WriteResult::kOk) {
      Close(*c, CloseReason::kWriteError);
      closed_any = true;
      continue;
    }
    FinishIfFlushed(*c);
  }
  to_flush_.clear();
  return closed_any;
}

void EdgeLoop::OnReply(codec::ReplyMeta& meta, std::string_view body) {
  if (meta.busy_ms > 0) {
    busy_[meta.service] = {Clock::now() + std::chrono::milliseconds(meta.busy_ms),
                           std::string(body)};
  }
  Clock::time_point started;
  const bool in_time = tracker_.Complete(meta.conn, meta.seq, &started);
  if (in_time && request_metrics_.on()) {
    request_metrics_.ObserveLatency(meta.service,
                                    std::chrono::duration<double>(Clock::now() - started).count());
  }
  if (admission_.pending_logins() > 0) {
    admission_.NoteReply(meta.conn, meta.seq, body, Clock::now());
  }
  const auto action = static_cast<codec::SessionAction>(meta.action);
  Connection* c = Find(meta.conn);
  if (c == nullptr) {
    // The broker just bound a connection that is gone: undo it.
    if (action == codec::SessionAction::kLogin) link_->Unbind(meta.conn);
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
  request_metrics_.CountResponse(meta.service, meta.command, body);
  WriteFrame(*c, codec::kFlagResponse, meta.service, meta.command, meta.seq, body);
}

void EdgeLoop::OnPush(const codec::EdgePushMeta& meta, std::string_view body) {
  // Encoded once for every target; WriteFrame would reuse scratch_, so keep a copy.
  std::string frame;
  codec::AppendFrame(&frame, codec::kFlagPush, meta.service, meta.command, 0, body);
  for (uint64_t id : meta.conns) {
    Connection* c = Find(id);
    if (c == nullptr || c->closing()) continue;
    EdgeStats::Add(stats_->pushes);
    WriteEncoded(*c, frame);
  }
}

void EdgeLoop::OnKick(const codec::KickMeta& meta) {
  Connection* c = Find(meta.conn);
  if (c == nullptr || c->closing()) return;
  EdgeStats::Add(stats_->kicked);
  // The broker already forgot this session: no UNBIND.
  c->LogOut();
  codec::MapWriter w(1);
  w.Key("reason").Str(meta.reason);
  WriteFrame(*c, codec::kFlagPush, codec::ToWire(codec::Service::kAuth), codec::auth::kKicked, 0,
             w.Finish());
  if (!c->closed()) CloseAfterFlush(*c, CloseReason::kKicked, meta.reason);
}

size_t EdgeLoop::RebindSessions(uint64_t bound_at) {
  size_t n = 0;
  for (auto& [id, c] : conns_) {
    if (!c->logged_in() || c->closed()) continue;
    link_->Bind(id, c->session(), bound_at);
    ++n;
  }
  return n;
}

void EdgeLoop::OnUnsent(const codec::RequestMeta& r) {
  if (!tracker_.Complete(r.conn, r.seq)) return;  // answered already
  AnswerUnavailable(RequestTracker::Request{r.conn, r.seq, r.service, r.command},
                    "broker queue full; retry");
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

}  // namespace imbus::edge
