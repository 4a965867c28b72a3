#include "edge/broker_link.h"

#include <sys/epoll.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace imbus::edge {

BrokerLink::BrokerLink(std::string log_name, const EdgeOptions& options, zmq::context_t& ctx,
                       int epoll_fd, uint64_t epoll_tag, Handler* handler)
    : log_name_(std::move(log_name)),
      options_(options),
      epoll_fd_(epoll_fd),
      epoll_tag_(epoll_tag),
      handler_(handler) {
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
  peer_->set_on_connected([this](uint64_t bound_at) { OnConnected(bound_at); });
  peer_->set_on_broker_lost([this] { handler_->OnBrokerLost(); });
  spdlog::info("{}: bus: connecting to broker {} as {}", log_name_, options.broker,
               peer_->identity());
  SyncFd();
}

BrokerLink::~BrokerLink() = default;

bool BrokerLink::SendRequest(const codec::RequestMeta& meta, std::string_view body) {
  constexpr size_t kMaxBatch = 256;
  if (batched_.size() >= kMaxBatch) FlushRequests();
  const size_t before = peer_->queued();
  const bool ok = peer_->Queue(codec::BusType::kRequest, codec::PackMeta(meta), body);
  if (peer_->queued() > before) {
    batched_.push_back(meta);
    return true;
  }
  // Gone at once: alone (a broker that takes no batches), or with the batch, which
  // Queue flushed past its byte bound. Those batched before went (or failed) with it;
  // this one is the caller's to answer.
  std::vector<codec::RequestMeta> went;
  went.swap(batched_);
  if (!ok) {
    for (const codec::RequestMeta& r : went) handler_->OnUnsent(r);
  }
  return ok;
}

// OnUnsent may close a connection, which may flush again: the list is taken first.
void BrokerLink::FlushRequests() {
  if (batched_.empty()) return;
  std::vector<codec::RequestMeta> unsent;
  unsent.swap(batched_);
  // Empty already when the broker was lost meanwhile: those were answered then.
  if (peer_->queued() > 0 && !peer_->Flush()) {
    spdlog::warn("{}: bus: a batch of {} requests could not be queued; answered UNAVAILABLE",
                 log_name_, unsent.size());
    for (const codec::RequestMeta& r : unsent) handler_->OnUnsent(r);
  }
  if (batched_.empty()) {  // keep the list's capacity: this runs every turn
    unsent.clear();
    batched_.swap(unsent);
  }
}

void BrokerLink::Bind(uint64_t conn, const codec::SessionInfo& session, uint64_t bound_at) {
  FlushRequests();
  peer_->Send(codec::BusType::kBind, codec::PackMeta(codec::BindMeta{conn, session, bound_at}));
}

void BrokerLink::Depart(uint64_t conn, uint64_t uid) {
  Unbind(conn);
  departed_.push_back(Departed{conn, uid, Clock::now()});
  // Bounded even when no broker answers for hours: the oldest go first.
  constexpr size_t kMaxDeparted = 1 << 20;
  if (departed_.size() > kMaxDeparted) departed_.pop_front();
}

void BrokerLink::Unbind(uint64_t conn) {
  FlushRequests();
  if (!peer_->Send(codec::BusType::kUnbind, codec::PackMeta(codec::UnbindMeta{conn}))) {
    spdlog::warn("{}: bus: could not send UNBIND for conn {}", log_name_, conn);
  }
}

void BrokerLink::Tick(uint32_t load) {
  FlushRequests();
  peer_->Tick(load);
  SyncFd();
}

void BrokerLink::SyncFd() {
  const int fd = peer_->fd();
  if (fd == fd_) return;
  // A reconnect closed the old socket (and with it its epoll registration); the new
  // fd may even reuse the old number, hence MOD on EEXIST.
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = epoll_tag_;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0 &&
      (errno != EEXIST || ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0)) {
    spdlog::error("{}: epoll_ctl(bus fd {}): {}", log_name_, fd, std::strerror(errno));
  }
  fd_ = fd;
}

void BrokerLink::Drain() {
  bus::BusMessage m;
  for (;;) {
    FlushRequests();
    // Frames for clients are queued while the burst is read and written after it:
    // one send(2) per connection per burst.
    handler_->BeginBurst();
    while (peer_->TryRecv(&m)) Dispatch(m);
    // A failed write closes its connection, and closing a logged-in one sends UNBIND
    // on the bus: read again after that, as after any send (the ZMQ_FD edge). So
    // after requests queued meanwhile.
    if (!handler_->EndBurst() && batched_.empty()) return;
  }
}

void BrokerLink::Dispatch(bus::BusMessage& m) {
  switch (m.type) {
    case codec::BusType::kReply: {
      codec::ReplyMeta meta;
      if (!codec::UnpackMeta(m.meta, &meta)) {
        spdlog::warn("{}: bus: malformed REPLY meta; dropped", log_name_);
        return;
      }
      handler_->OnReply(meta, m.body);
      return;
    }
    case codec::BusType::kPush: {
      codec::EdgePushMeta meta;
      if (!codec::UnpackMeta(m.meta, &meta)) {
        spdlog::warn("{}: bus: malformed PUSH meta; dropped", log_name_);
        return;
      }
      handler_->OnPush(meta, m.body);
      return;
    }
    case codec::BusType::kKick: {
      codec::KickMeta meta;
      if (!codec::UnpackMeta(m.meta, &meta)) {
        spdlog::warn("{}: bus: malformed KICK meta; dropped", log_name_);
        return;
      }
      handler_->OnKick(meta);
      return;
    }
    default:
      spdlog::warn("{}: bus: unexpected message type {} from broker; dropped", log_name_,
                   static_cast<int>(m.type));
  }
}

void BrokerLink::OnConnected(uint64_t bound_at) {
  const size_t n = handler_->RebindSessions(bound_at);
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

void BrokerLink::PruneDeparted() {
  // The broker handles what it reads in order and heartbeats after each batch: a word
  // from it well after an UNBIND (two intervals of margin for a backlog) means it read
  // it. A DEPARTED it read takes its settle time (liveness intervals) to be acted on;
  // if that broker dies first, the next one must hear of them too: 2 + 3 intervals.
  const auto seen_before =
      peer_->last_served() - 5 * std::chrono::milliseconds(options_.heartbeat_ms);
  while (!departed_.empty() && departed_.front().at < seen_before) departed_.pop_front();
}

}  // namespace imbus::edge
