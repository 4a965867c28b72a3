// EdgeLoop, client side: the epoll loop, accepting, reading frames, answering what
// the edge answers itself, writing and closing. The bus side is in edge_loop_bus.cc.
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
                   EdgeStats* stats, IpLimits* ip_limits)
    : log_name_(options.name + "/" + std::to_string(index)),
      options_(options),
      stats_(stats),
      listener_(std::move(listener)),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      tracker_(std::chrono::milliseconds(options.request_timeout_ms)),
      next_sweep_(Clock::now() + kSweepEvery),
      ip_limits_(ip_limits) {
  if (!epoll_.valid()) {
    throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = kListenerTag;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener_.fd(), &ev) != 0) {
    throw std::runtime_error(std::string("epoll_ctl(listener): ") + std::strerror(errno));
  }
  bus::BusPeer::Options bo;
  bo.endpoint = options.broker;
  bo.ready.role = std::string(codec::kRoleEdge);
  bo.ready.name = options.name;
  bo.ready.host = options.advertise_host;
  bo.ready.port = options.advertise_port;
  bo.heartbeat_ms = options.heartbeat_ms;
  bo.identity_prefix = log_name_;
  bo.curve = options.curve;
  peer_ = std::make_unique<bus::BusPeer>(ctx, std::move(bo));
  peer_->set_on_connected([this](uint64_t bound_at) { OnBusConnected(bound_at); });
  peer_->set_on_broker_lost([this] { OnBrokerLost(); });
  spdlog::info("{}: bus: connecting to broker {} as {}", log_name_, options.broker,
               peer_->identity());
  SyncBusFd();
}

EdgeLoop::~EdgeLoop() = default;

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
        OnAccept(listener_, false, now);
      } else if (tag == kTlsListenerTag) {
        OnAccept(*tls_listener_, true, now);
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
      PruneDeparted();
      next_sweep_ = now + kSweepEvery;
    }
    peer_->Tick(static_cast<uint32_t>(conns_.size()));
    SyncBusFd();
    // Last: a send may have consumed the ZMQ_FD edge, so read until empty every time
    // and send nothing after it in this iteration.
    DrainBus();
    graveyard_.clear();
  }
  std::vector<uint64_t> ids;
  for (auto& [id, c] : conns_) ids.push_back(id);
  for (uint64_t id : ids) Close(*conns_.at(id), "edge shutting down");
  graveyard_.clear();
  spdlog::info("{}: stopped", log_name_);
}

Connection* EdgeLoop::Find(uint64_t conn) {
  auto it = conns_.find(conn);
  return it == conns_.end() ? nullptr : it->second.get();
}

void EdgeLoop::OnAccept(Listener& listener, bool tls, Clock::time_point now) {
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
    spdlog::debug("{}: conn {} opened from {}:{}{}", log_name_, id, host, port,
                  tls ? " (TLS)" : "");
    auto c = std::make_unique<Connection>(id, std::move(fd), options_.max_frame, std::move(host),
                                          port, now);
    Connection& added = *c;
    // The handshake starts on the first event (EPOLLOUT fires at once when added).
    if (tls) c->StartTls(std::move(ssl));
    conns_.emplace(id, std::move(c));
    EdgeStats::Add(stats_->accepted);
    EdgeStats::Add(stats_->connections);
    AdmitAddress(added, now);
  }
}

void EdgeLoop::OnConnectionEvent(Connection& c, uint32_t events, Clock::time_point now) {
  if (c.tls()) {
    OnTlsEvent(c, now);
    return;
  }
  if ((events & EPOLLOUT) != 0 && c.has_output()) {
    if (c.Flush() != Connection::WriteResult::kOk) {
      Close(c, "write error (peer gone)");
      return;
    }
    FinishIfFlushed(c, now);
  }
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0 && !c.closed()) {
    ReadInput(c, now);
  }
}

void EdgeLoop::ReadInput(Connection& c, Clock::time_point now) {
  char buf[kReadChunk];
  while (!c.closed()) {
    const ssize_t n = c.Receive(buf, sizeof(buf));
    if (n > 0) {
      if (c.closing()) continue;  // ending the stream: input is discarded
      c.decoder().Feed(buf, static_cast<size_t>(n));
      codec::Frame frame;
      for (;;) {
        const auto status = c.decoder().Next(&frame);
        if (status == codec::FrameDecoder::Status::kNeedMore) break;
        if (status == codec::FrameDecoder::Status::kBroken) {
          spdlog::info("{}: conn {} from {}:{}: broken stream: {}", log_name_, c.id(),
                       c.peer_host(), c.peer_port(), c.decoder().error());
          EdgeStats::Add(stats_->closed_broken);
          WriteSysError(c, codec::ErrorBody(codec::Code::kBadRequest, c.decoder().error()));
          CloseAfterFlush(c, "broken stream");
          break;
        }
        HandleFrame(c, frame, now);
        if (c.closed() || c.closing()) break;
      }
      if (!c.closed()) c.decoder().ShrinkIfEmpty();
    } else if (n == 0) {
      Close(c, c.closing() ? "closed after final output" : "peer closed");
      return;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return;
    } else if (errno == EPROTO && c.tls()) {
      Close(c, "TLS error: " + net::TlsErrorText("protocol error"));
      return;
    } else {
      Close(c, std::string("read error: ") + std::strerror(errno));
      return;
    }
  }
}

void EdgeLoop::HandleFrame(Connection& c, const codec::Frame& frame, Clock::time_point now) {
  EdgeStats::Add(stats_->requests);
  c.Touch(now);
  const codec::Header& h = frame.header;
  if (!AdmitConnectionRate(c, h, now)) return;
  codec::Body body;
  std::string error;
  if (!codec::Body::Parse(frame.body, &body, &error)) {
    Respond(c, h, codec::ErrorBody(codec::Code::kBadRequest, error));
    return;
  }
  const codec::CommandInfo* info = codec::FindCommand(h.service, h.command);
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
  const bool login = info->service == codec::Service::kAuth &&
                     (h.command == codec::auth::kLogin || h.command == codec::auth::kResume ||
                      h.command == codec::auth::kDeleteAccount);
  if (login && !AdmitLogin(c, h, now)) return;
  if (Forward(c, frame, now) && login) NoteLoginForwarded(c, h, body);
}

bool EdgeLoop::Forward(Connection& c, const codec::Frame& frame, Clock::time_point now) {
  const codec::Header& h = frame.header;
  if (!peer_->broker_alive()) {
    Respond(c, h, codec::ErrorBody(codec::Code::kUnavailable, "broker unreachable; retry"));
    return false;
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
  if (!peer_->Send(codec::BusType::kRequest, codec::PackMeta(meta), frame.body)) {
    Respond(c, h, codec::ErrorBody(codec::Code::kUnavailable, "broker queue full; retry"));
    return false;
  }
  EdgeStats::Add(stats_->forwarded);
  tracker_.Add(RequestTracker::Request{c.id(), h.seq, h.service, h.command}, now);
  return true;
}

void EdgeLoop::Respond(Connection& c, const codec::Header& request, std::string_view body) {
  WriteFrame(c, codec::kFlagResponse, request.service, request.command, request.seq, body);
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
  if (c.closed() || c.shut_down()) return;
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
      Close(c, "slow reader: pending output over " + std::to_string(options_.max_output_bytes) +
                   " bytes");
      return;
    case Connection::WriteResult::kError:
      Close(c, "write error (peer gone)");
      return;
  }
}

void EdgeLoop::CloseAfterFlush(Connection& c, std::string_view reason) {
  if (c.closed() || c.closing()) return;
  spdlog::info("{}: conn {} from {}:{}: closing after output: {}", log_name_, c.id(), c.peer_host(),
               c.peer_port(), reason);
  c.set_closing();
  c.Touch(Clock::now());  // starts the grace period
  FinishIfFlushed(c, Clock::now());
}

void EdgeLoop::FinishIfFlushed(Connection& c, Clock::time_point now) {
  (void)now;
  if (!c.closing() || c.closed() || c.has_output() || c.shut_down()) return;
  // FIN after the last byte, then wait for the peer's EOF before closing: closing
  // with unread input would send RST and could destroy the answer in flight.
  c.ShutdownWrite();
}

void EdgeLoop::Close(Connection& c, std::string_view reason) {
  if (c.closed()) return;
  if (c.logged_in()) {
    SendUnbind(c.id());
    departed_.push_back(Departed{c.id(), c.session().uid, Clock::now()});
    // Bounded even when no broker answers for hours: the oldest go first.
    constexpr size_t kMaxDeparted = 1 << 20;
    if (departed_.size() > kMaxDeparted) departed_.pop_front();
  }
  if (c.ip_counted()) ip_limits_->ReleaseConnection(c.peer_host());
  const bool quiet = reason == "peer closed" || reason == "closed after final output";
  if (quiet) {
    spdlog::debug("{}: conn {} from {}:{} closed: {}", log_name_, c.id(), c.peer_host(),
                  c.peer_port(), reason);
  } else {
    spdlog::info("{}: conn {} from {}:{} closed: {}", log_name_, c.id(), c.peer_host(),
                 c.peer_port(), reason);
  }
  c.CloseSocket();  // also leaves the epoll set
  EdgeStats::Add(stats_->closed);
  stats_->connections.fetch_sub(1, std::memory_order_relaxed);
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
      Close(*c, "peer did not finish closing in time");
    } else {
      EdgeStats::Add(stats_->closed_idle);
      Close(*c, "idle for " + std::to_string(options_.idle_timeout_s) + " s");
    }
  }
}

}  // namespace imbus::edge
