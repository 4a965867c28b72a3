#include "broker/broker.h"

#include "broker/broker_metrics.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <map>
#include <random>

#include <spdlog/spdlog.h>

#include "bus/curve.h"
#include "bus/peer.h"
#include "codec/body.h"
#include "codec/codes.h"
#include "codec/commands.h"
#include "codec/route_key.h"
#include "codec/utf8.h"
#include "net/clock.h"

namespace imbus::broker {

namespace {

constexpr int kMaxPollMs = 50;    // upper bound on timer and stop-flag latency
constexpr int kMaxBatch = 4096;   // messages handled between timer checks
constexpr int kQueueScanMs = 10;  // queued requests expire this late at most
// A broker pair's state message: [state: 1 byte][incarnation: 8 bytes, little-endian].
constexpr size_t kStateSize = 9;

uint64_t DrawIncarnation() {
  std::random_device rd;
  uint64_t v = 0;
  while (v == 0) v = (uint64_t{rd()} << 32) ^ rd();
  return v;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) {
    if (!out.empty()) out += ',';
    out += s;
  }
  return out;
}

// MSG/SEND goes to the worker owning its conversation (WorkerPool::Pick); other
// requests to the least loaded worker.
uint64_t RouteKey(const codec::RequestMeta& req, std::string_view body) {
  if (req.service != codec::ToWire(codec::Service::kMsg) || req.command != codec::msg::kSend) {
    return 0;
  }
  return codec::SendRouteKey(req.uid, body);
}

// RequestMeta::deadline_ms (wall clock, set by the edge) on this process's steady
// clock; max() when the request has none (an older edge, the broker's own).
std::chrono::steady_clock::time_point SteadyDeadline(const codec::RequestMeta& req,
                                                     std::chrono::steady_clock::time_point now) {
  if (req.deadline_ms == 0) return std::chrono::steady_clock::time_point::max();
  // Bounded so that a wild value cannot overflow the time point.
  constexpr int64_t kDay = 24 * 3600 * 1000;
  return now + std::chrono::milliseconds(
                   std::clamp<int64_t>(req.deadline_ms - net::WallNowMs(), -kDay, kDay));
}

constexpr char kSameDevice[] = "logged in on the same device elsewhere";

int64_t ToMs(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

Broker::Broker(zmq::context_t& ctx, Options options)
    : options_(std::move(options)),
      socket_(ctx, zmq::socket_type::router),
      workers_(options_.max_queued, options_.max_outstanding),
      user_limits_(options_.user_limits),
      metrics_(std::make_unique<BrokerMetrics>()),
      incarnation_(DrawIncarnation()) {
  socket_.set(zmq::sockopt::router_mandatory, 1);
  // A peer keeps its identity across reconnects: the new connection takes it over
  // (the old one may not have noticed it is dead yet), and the peer stays known.
  socket_.set(zmq::sockopt::router_handover, 1);
  socket_.set(zmq::sockopt::linger, 0);
  socket_.set(zmq::sockopt::maxmsgsize, int64_t{4} << 20);
  socket_.set(zmq::sockopt::sndhwm, 1000000);
  socket_.set(zmq::sockopt::rcvhwm, 1000000);
  if (!options_.curve_secret_key.empty()) {
    auth_ = std::make_unique<CurveAuthenticator>(ctx, options_.curve_allow);
    socket_.set(zmq::sockopt::curve_server, 1);
    // 41 bytes: libzmq takes a Z85 key with its terminating NUL.
    if (zmq_setsockopt(socket_.handle(), ZMQ_CURVE_SECRETKEY, options_.curve_secret_key.c_str(),
                       options_.curve_secret_key.size() + 1) != 0) {
      throw zmq::error_t();
    }
    socket_.set(zmq::sockopt::zap_domain, "imbus");
  }
  socket_.bind(options_.bind);
  endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  if (auth_) {
    auth_->Watch(socket_);
    spdlog::info("broker: CURVE on: {} allowed peer keys", options_.curve_allow.size());
  }
  next_heartbeat_ = Clock::now() + std::chrono::milliseconds(options_.heartbeat_ms);
  spdlog::info("broker: listening on {} (incarnation {:016x})", endpoint_, incarnation_);
  HaSetUp(ctx);
}

std::chrono::milliseconds Broker::RebindTime() const {
  return std::chrono::milliseconds(options_.departed_settle_ms > 0
                                       ? options_.departed_settle_ms
                                       : options_.heartbeat_ms * options_.liveness);
}

void Broker::StartRebuild() {
  if (rebuilding_) return;
  rebuilding_ = true;
  events_from_ = Clock::now() + RebindTime();
  spdlog::info(
      "broker: edges re-bind sessions of a previous broker; presence events wait "
      "{} ms for the table to fill",
      RebindTime().count());
}

Broker::~Broker() = default;

const char* Broker::ha_state() const { return ha_ ? HaStateName(ha_->state()) : "standalone"; }

void Broker::Run(const std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_relaxed)) PollOnce(kMaxPollMs);
}

void Broker::RunFor(std::chrono::milliseconds d) {
  const auto end = Clock::now() + d;
  while (Clock::now() < end) PollOnce(kMaxPollMs);
}

void Broker::PollOnce(int timeout_ms) {
  const auto until_beat =
      std::chrono::duration_cast<std::chrono::milliseconds>(next_heartbeat_ - Clock::now());
  const int wait = static_cast<int>(
      std::clamp<int64_t>(until_beat.count(), 0, static_cast<int64_t>(timeout_ms)));
  zmq::pollitem_t items[4] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}, {}, {}, {}};
  size_t n_items = 1;
  if (auth_) {
    items[n_items++] = {auth_->zap().handle(), 0, ZMQ_POLLIN, 0};
    items[n_items++] = {auth_->monitor().handle(), 0, ZMQ_POLLIN, 0};
  }
  if (ha_sub_) items[n_items++] = {ha_sub_->handle(), 0, ZMQ_POLLIN, 0};
  try {
    zmq::poll(items, n_items, std::chrono::milliseconds(wait));
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) throw;
  }
  if (auth_) {
    // Handshakes wait on ZAP answers: serve them first, every turn.
    auth_->HandleZap();
    auth_->HandleMonitor();
  }
  // The peer broker's state first: a failover decision needs the freshest view.
  if (ha_sub_) HaRead();
  std::string identity;
  std::string parts[3];
  for (int handled = 0; handled < kMaxBatch; ++handled) {
    zmq::message_t part;
    if (!socket_.recv(part, zmq::recv_flags::dontwait)) break;
    identity = part.to_string();
    size_t n = 0;
    bool extra = false;
    while (part.more()) {
      if (!socket_.recv(part, zmq::recv_flags::none)) break;
      if (n < 3) {
        parts[n++] = part.to_string();
      } else {
        extra = true;
      }
    }
    if (n < 1 || parts[0].size() != 1 || extra) {
      ++counters_.malformed;
      continue;
    }
    const auto type = static_cast<codec::BusType>(parts[0][0]);
    static const std::string kEmpty;
    if (type == codec::BusType::kAdmin) {
      // The ZAP handler set the peer's public key as the message's User-Id.
      const char* key = zmq_msg_gets(part.handle(), "User-Id");
      OnAdmin(identity, key != nullptr ? key : "", n > 1 ? parts[1] : kEmpty);
      continue;
    }
    if (type == codec::BusType::kBatch) {
      OnBatch(identity, n > 2 ? parts[2] : kEmpty);
    } else {
      OnMessage(identity, type, n > 1 ? parts[1] : kEmpty, n > 2 ? parts[2] : kEmpty);
    }
  }
  // Replies above made room in workers for requests waiting in the queue.
  DrainQueue(workers_.QueuedServices());
  OnTimer();
  // A broker rebuilding its table from the edges (StartRebuild) holds presence
  // events back until every edge has had time to re-bind: an event now would be
  // computed from a half-built session table (a friend not re-bound yet would miss
  // the push). The table keeps the net change per user: what went and came back is
  // no event.
  if (Clock::now() >= events_from_) EmitSessionEvents();
  FlushBatches();
}

// Requests, replies, pushes, kicks and query answers to a peer that takes batches
// wait in its batch until the end of this turn of the loop (FlushBatches), so that
// everything a turn has for one edge or worker travels as one bus message. Anything
// else goes at once, after what is batched for that peer (the order to one peer is
// kept). A batch to a worker that cannot be sent hands its requests to other workers
// at the end of the turn (FlushBatches), as a failed single send does at once
// (SendToWorker).
bool Broker::Send(const std::string& identity, codec::BusType type, const std::string& meta,
                  const std::string& body) {
  auto it = peers_.find(identity);
  if (it != peers_.end() && (it->second.features & codec::kFeatureBatch) != 0) {
    Peer& peer = it->second;
    if (type == codec::BusType::kReply || type == codec::BusType::kPush ||
        type == codec::BusType::kKick || type == codec::BusType::kQuery ||
        type == codec::BusType::kRequest) {
      AddToBatch(identity, peer, type, meta, body);
      return true;
    }
    if (!peer.batch.empty()) FlushBatch(identity, peer);
  }
  if (bus::SendBus(socket_, identity, type, meta, body)) return true;
  ++counters_.send_failures;
  spdlog::debug("broker: send of type {} to {} failed", static_cast<int>(type), identity);
  return false;
}

void Broker::AddToBatch(const std::string& identity, Peer& peer, codec::BusType type,
                        const std::string& meta, const std::string& body) {
  if (peer.batch.empty()) batched_.push_back(identity);
  peer.batch.Add(type, meta, body);
  constexpr size_t kMaxBatchBytes = 256 << 10;  // well under the bus's 4 MiB limit
  if (peer.batch.bytes() >= kMaxBatchBytes) FlushBatch(identity, peer);
}

void Broker::FlushBatch(const std::string& identity, Peer& peer) {
  bool ok = true;
  if (peer.batch.count() == 1) {  // as it would have gone alone
    codec::BatchReader one(peer.batch.data());
    codec::BusType type{};
    std::string_view meta, body;
    if (one.Next(&type, &meta, &body)) ok = bus::SendBus(socket_, identity, type, meta, body);
  } else {
    ok = bus::SendBus(socket_, identity, codec::BusType::kBatch, {}, peer.batch.data());
  }
  if (!ok) {
    counters_.send_failures += peer.batch.count();
    spdlog::debug("broker: batch of {} to {} failed", peer.batch.count(), identity);
    if (!peer.is_edge) unreachable_[identity] += peer.batch.data();
  }
  peer.batch.Clear();
}

// ROUTER_MANDATORY refused batches to these workers: their connections are gone.
// None of those requests reached them, so they go to other workers (or the queue)
// instead of being answered UNAVAILABLE; what the workers held from before is
// answered as when they die (RemovePeer). All of them leave first, so that no
// request is handed to another of them.
void Broker::RedispatchUnsent(const std::map<std::string, std::string>& unsent_by_worker) {
  std::vector<std::pair<WorkerPool::Pending, std::string>> unsent;
  for (const auto& [worker, batch] : unsent_by_worker) {
    codec::BatchReader items(batch);
    codec::BusType type{};
    std::string_view meta, body;
    while (items.Next(&type, &meta, &body)) {
      codec::RequestMeta req;
      if (type != codec::BusType::kRequest || !codec::UnpackMeta(meta, &req)) continue;
      if (std::optional<WorkerPool::Pending> p = workers_.TakePending(req.rid)) {
        unsent.emplace_back(std::move(*p), std::string(body));
      }
    }
  }
  for (const auto& [worker, batch] : unsent_by_worker) RemovePeer(worker, "unreachable");
  for (auto& [p, request_body] : unsent) {
    Dispatch(p.edge, codec::ServiceName(p.meta.service), std::move(p.meta), request_body,
             Clock::now() + std::chrono::milliseconds(options_.queue_timeout_ms));
  }
}

// A flush may find workers unreachable, whose requests then go to other workers
// (RedispatchUnsent), which batches them anew: those go out in the same turn.
void Broker::FlushBatches() {
  while (!batched_.empty() || !unreachable_.empty()) {
    std::vector<std::string> now;
    now.swap(batched_);
    for (const std::string& identity : now) {
      auto it = peers_.find(identity);  // gone meanwhile: what it had goes with it
      if (it != peers_.end() && !it->second.batch.empty()) FlushBatch(identity, it->second);
    }
    std::map<std::string, std::string> gone;
    gone.swap(unreachable_);
    RedispatchUnsent(gone);
  }
}

void Broker::OnBatch(const std::string& identity, std::string_view items) {
  codec::BatchReader reader(items);
  codec::BusType type{};
  std::string_view meta, body;
  while (reader.Next(&type, &meta, &body)) {
    // Announcements and control messages never come batched.
    if (type == codec::BusType::kReady || type == codec::BusType::kStats) {
      ++counters_.malformed;
      continue;
    }
    OnMessage(identity, type, std::string(meta), std::string(body));
  }
  if (!reader.ok()) {
    ++counters_.malformed;
    spdlog::warn("broker: malformed batch from {}", identity);
  }
}

void Broker::OnMessage(const std::string& identity, codec::BusType type, const std::string& meta,
                       const std::string& body) {
  // STATS is answered to anyone so that a control tool needs no READY.
  if (type == codec::BusType::kStats) {
    OnStats(identity);
    return;
  }
  // A passive broker of a pair serves no one (and a client may make it active).
  if (ha_ && !HaAdmit(identity, Clock::now())) return;
  if (type == codec::BusType::kReady) {
    OnReady(identity, meta);
    return;
  }
  auto it = peers_.find(identity);
  if (it == peers_.end()) {
    // Tells the peer which broker this is: it announces itself once to it, however
    // many of its messages (sent before its READY got here) draw this answer.
    Send(identity, codec::BusType::kUnknownPeer,
         codec::PackMeta(codec::Heartbeat{0, incarnation_}));
    return;
  }
  it->second.last_heard = Clock::now();
  const bool is_edge = it->second.is_edge;
  if (!codec::MaySendToBroker(type, is_edge)) {
    ++counters_.malformed;
    return;
  }
  switch (type) {
    case codec::BusType::kHeartbeat: {
      codec::Heartbeat hb;
      if (is_edge && codec::UnpackMeta(meta, &hb)) routes_.SetLoad(identity, hb.load);
      break;
    }
    case codec::BusType::kRequest:
      OnRequest(identity, meta, body);
      break;
    case codec::BusType::kReply:
      OnReply(identity, meta, body);
      break;
    case codec::BusType::kPush:
      OnPush(meta, body);
      break;
    case codec::BusType::kBind:
      OnBind(identity, meta);
      break;
    case codec::BusType::kUnbind:
      OnUnbind(identity, meta);
      break;
    case codec::BusType::kDeparted:
      OnDeparted(identity, meta);
      break;
    case codec::BusType::kQuery:
      OnQuery(identity, meta);
      break;
    default:
      ++counters_.malformed;
      break;
  }
}

void Broker::OnReady(const std::string& identity, const std::string& meta) {
  codec::Ready ready;
  if (!codec::UnpackMeta(meta, &ready)) {
    ++counters_.malformed;
    spdlog::warn("broker: unreadable READY from {}", identity);
    return;
  }
  const bool is_edge = ready.role == codec::kRoleEdge;
  if (!is_edge && ready.role != codec::kRoleWorker) {
    ++counters_.malformed;
    spdlog::warn("broker: READY from {} with unknown role '{}'", identity, ready.role);
    return;
  }
  ++(is_edge ? counters_.edge_readies : counters_.worker_readies);
  // The answer to READY: our incarnation, so the peer knows who accepted it, and that
  // it may send us batches.
  const std::string ack = codec::PackMeta(codec::Heartbeat{0, incarnation_, codec::kFeatureBatch});
  auto known = peers_.find(identity);
  if (known != peers_.end() && known->second.is_edge && is_edge) {
    // An edge thread we know announced itself again (its connection dropped and
    // came back): its sessions stay bound — its re-binds change nothing, and no
    // presence event fires for users who never left.
    known->second.last_heard = Clock::now();
    known->second.name = ready.name;
    if (!known->second.batch.empty()) FlushBatch(identity, known->second);
    known->second.features = ready.features;
    routes_.AddThread(identity, ready.name, ready.host, ready.port);
    spdlog::info("broker: edge {} announced itself again; its sessions stay", identity);
    Send(identity, codec::BusType::kHeartbeat, ack);
    return;
  }
  // A worker that announces itself again thinks its connection dropped: what it
  // held may be lost, so that is answered now (UNAVAILABLE) rather than at timeout.
  if (known != peers_.end()) RemovePeer(identity, "announced again");
  peers_[identity] = Peer{is_edge, ready.name, Clock::now(), ready.features, {}};
  Send(identity, codec::BusType::kHeartbeat, ack);
  if (is_edge) {
    routes_.AddThread(identity, ready.name, ready.host, ready.port);
    spdlog::info("broker: edge joined: {} (name {}, clients to {}:{})", identity, ready.name,
                 ready.host, ready.port);
  } else {
    spdlog::info("broker: worker joined: {} (services {})", identity, Join(ready.services));
    workers_.AddWorker(identity, ready.services);
    DrainQueue(ready.services);
  }
}

void Broker::OnRequest(const std::string& edge, const std::string& meta, const std::string& body) {
  codec::RequestMeta req;
  if (!codec::UnpackMeta(meta, &req)) {
    ++counters_.malformed;  // without a conn there is no one to answer
    return;
  }
  ++counters_.requests;
  metrics_->CountRequest(req.service);
  if (req.uid != 0 && !AdmitUser(edge, req)) return;
  if (req.service == codec::ToWire(codec::Service::kSys) && req.command == codec::sys::kRoute) {
    AnswerRoute(edge, req);
    return;
  }
  const char* service = codec::ServiceName(req.service);
  if (service == nullptr) {
    AnswerError(edge, req, static_cast<int>(codec::Code::kUnsupported), "unknown service");
    return;
  }
  Dispatch(edge, service, std::move(req), body,
           Clock::now() + std::chrono::milliseconds(options_.queue_timeout_ms));
}

bool Broker::AdmitUser(const std::string& edge, const codec::RequestMeta& req) {
  const codec::CommandInfo* info = codec::FindCommand(req.service, req.command);
  const bool send = info != nullptr && info->rate == codec::RateClass::kSend;
  const UserLimits::Verdict v = user_limits_.Take(req.uid, send, Clock::now());
  if (v.allowed()) return true;
  const bool sends = v.refusal == UserLimits::Refusal::kSends;
  ++(sends ? counters_.rate_limited_send : counters_.rate_limited);
  spdlog::debug("broker: uid {} over its {} limit; retry in {} ms", req.uid,
                sends ? "MSG/SEND" : "request", v.retry_ms);
  if (peers_.count(edge) == 0) return false;
  codec::ReplyMeta reply = codec::ReplyMetaFor(req);
  Send(edge, codec::BusType::kReply, codec::PackMeta(reply),
       codec::RateLimitedBody(v.retry_ms, sends ? "too many messages from this user; slow down"
                                                : "too many requests from this user; slow down"));
  return false;
}

void Broker::Dispatch(const std::string& edge, const std::string& service, codec::RequestMeta req,
                      const std::string& body, Clock::time_point queue_deadline) {
  const auto now = Clock::now();
  const Clock::time_point deadline = SteadyDeadline(req, now);
  if (deadline <= now) {
    AnswerExpired(edge, req);
    return;
  }
  // First come, first served: behind requests already queued for the service. A
  // keyed request waits only behind its own key's (WorkerPool::TakeDispatchable
  // keeps no other order): a full owner's keys must not hold up the others.
  std::optional<std::string> worker;
  const uint64_t key = RouteKey(req, body);
  if (workers_.QueuedFor(service) == 0 || (key != 0 && !workers_.KeyQueued(key))) {
    worker = workers_.Pick(service, key);
  }
  if (worker) {
    SendToWorker(*worker, edge, service, std::move(req), body, key);
    return;
  }
  // Every worker is full (or none serves the service yet: then the request waits up
  // to queue_timeout_ms for one to appear, as before). The queue is bounded by time:
  // how long its oldest request has waited says how long a new one would, so once
  // that is max_queue_wait_ms, or more than the request has left, waiting is pointless
  // and the answer comes at once. The broker's own requests (no edge) always wait.
  const bool busy = workers_.Serves(service);
  if (busy && !edge.empty()) {
    const Clock::duration waited = now - workers_.OldestQueuedAt(service).value_or(now);
    if (waited >= std::chrono::milliseconds(options_.max_queue_wait_ms) ||
        deadline - now <= waited) {
      AnswerBusy(edge, req, service, waited);
      return;
    }
  }
  if (!workers_.Enqueue({edge, service, req, body, std::min(queue_deadline, deadline), now, key})) {
    if (busy) {
      AnswerBusy(edge, req, service, now - workers_.OldestQueuedAt(service).value_or(now));
    } else {
      AnswerError(edge, req, static_cast<int>(codec::Code::kUnavailable),
                  "no worker for service " + service + " (queue full)");
    }
  }
}

void Broker::SendToWorker(const std::string& worker, const std::string& edge,
                          const std::string& service, codec::RequestMeta req,
                          const std::string& body, uint64_t key) {
  req.rid = workers_.NextRid();
  req.owner = key != 0 && workers_.NoteKeyed(key, worker);
  auto peer = peers_.find(worker);
  if (peer != peers_.end() && (peer->second.features & codec::kFeatureBatch) != 0) {
    // Into the worker's batch: pending first, so that a flush that fails (here, past
    // the batch's byte bound, or at the end of the turn) finds it to hand on.
    const uint64_t rid = req.rid;
    const std::string meta = codec::PackMeta(req);
    workers_.AddPending({rid, edge, worker, std::move(req),
                         Clock::now() + std::chrono::milliseconds(options_.request_timeout_ms)});
    AddToBatch(worker, peer->second, codec::BusType::kRequest, meta, body);
    return;
  }
  if (!Send(worker, codec::BusType::kRequest, codec::PackMeta(req), body)) {
    // ROUTER_MANDATORY says the worker's connection is gone (killed before its
    // heartbeats ran out): drop it now, answering what it held, and give this
    // request to another worker or the queue instead of failing it.
    RemovePeer(worker, "unreachable");
    Dispatch(edge, service, std::move(req), body,
             Clock::now() + std::chrono::milliseconds(options_.queue_timeout_ms));
    return;
  }
  const uint64_t rid = req.rid;
  workers_.AddPending({rid, edge, worker, std::move(req),
                       Clock::now() + std::chrono::milliseconds(options_.request_timeout_ms)});
}

void Broker::DrainQueue(const std::vector<std::string>& services) {
  const auto now = Clock::now();
  for (const std::string& service : services) {
    // What cannot go yet (every worker full, or a key's owner full) waits for
    // replies.
    for (auto& [q, worker] : workers_.TakeDispatchable(service)) {
      // The asker died while it waited (an empty edge is the broker's own request).
      if (!q.edge.empty() && peers_.count(q.edge) == 0) continue;
      if (SteadyDeadline(q.meta, now) <= now) {
        AnswerExpired(q.edge, q.meta);
        continue;
      }
      SendToWorker(worker, q.edge, q.service, std::move(q.meta), q.body, q.key);
    }
  }
}

void Broker::AnswerBusy(const std::string& edge, const codec::RequestMeta& req,
                        const std::string& service, Clock::duration waited) {
  ++counters_.busy;
  const auto now = Clock::now();
  if (now >= next_busy_log_) {
    spdlog::info(
        "broker: service {} busy (oldest queued request waited {} ms): {} requests "
        "refused at once since the last line",
        service, ToMs(waited), counters_.busy - busy_logged_);
    busy_logged_ = counters_.busy;
    next_busy_log_ = now + std::chrono::seconds(1);
  }
  if (edge.empty() || peers_.count(edge) == 0) return;
  codec::ReplyMeta reply = codec::ReplyMetaFor(req);
  // The edge refuses the service's next requests itself for a quarter of the queue's
  // bound: they would meet the same answer here, and refusing them there costs no bus
  // round trip. The queue still holds the rest of the bound's work meanwhile, so the
  // workers never run dry because of it. Not while a worker of the service has room:
  // then what waits is a full owner's conversations (MSG/SEND), and the messages of
  // other conversations still go at once.
  if (!workers_.HasRoom(service)) {
    reply.busy_ms = static_cast<uint32_t>(std::max(options_.max_queue_wait_ms, 0) / 4);
  }
  // The queue has been standing at least `waited`: a retry sooner would most likely
  // meet it still standing.
  const int64_t retry_ms = std::clamp<int64_t>(ToMs(waited), options_.max_queue_wait_ms, 30000);
  Send(edge, codec::BusType::kReply, codec::PackMeta(reply),
       codec::RateLimitedBody(retry_ms, "server busy (service " + service + "); retry later"));
}

void Broker::AnswerExpired(const std::string& edge, const codec::RequestMeta& req) {
  ++counters_.expired;
  spdlog::debug("broker: conn {} seq {} past its deadline before a worker took it", req.conn,
                req.seq);
  AnswerError(edge, req, static_cast<int>(codec::Code::kUnavailable),
              "deadline passed before a worker took the request; not carried out");
}

void Broker::AnswerError(const std::string& edge, const codec::RequestMeta& req, int code,
                         const std::string& error) {
  if (code == static_cast<int>(codec::Code::kUnavailable)) ++counters_.unavailable;
  if (peers_.count(edge) == 0) return;
  codec::ReplyMeta reply = codec::ReplyMetaFor(req);
  Send(edge, codec::BusType::kReply, codec::PackMeta(reply),
       codec::ErrorBody(static_cast<codec::Code>(code), error));
}

void Broker::AnswerRoute(const std::string& edge, const codec::RequestMeta& req) {
  // Drained edges (imbus-ctl drain) are left out, unless every edge is drained.
  std::vector<RouteTable::Edge> edges = routes_.Edges();
  std::vector<RouteTable::Edge> serving;
  for (const RouteTable::Edge& e : edges) {
    if (!routes_.IsDrained(e.name)) serving.push_back(e);
  }
  if (!serving.empty()) edges.swap(serving);
  std::optional<RouteTable::Edge> best = routes_.LeastLoaded();
  if (!best) {
    // Cannot happen (the asker is an edge); fall back to the asker anyway.
    const RouteTable::Edge* own = routes_.EdgeOf(edge);
    best = own ? *own : RouteTable::Edge{};
  }
  codec::MapWriter w(4);
  w.Key("code").Int(0);
  w.Key("host").Str(best->host);
  w.Key("port").Uint(best->port);
  w.Key("edges");
  w.packer().pack_array(static_cast<uint32_t>(edges.size()));
  for (const RouteTable::Edge& e : edges) {
    w.packer().pack_map(3);
    w.Key("host").Str(e.host);
    w.Key("port").Uint(e.port);
    w.Key("load").Uint(e.load);
  }
  codec::ReplyMeta reply = codec::ReplyMetaFor(req);
  if (Send(edge, codec::BusType::kReply, codec::PackMeta(reply), w.Finish())) {
    ++counters_.replies;
  }
}

void Broker::OnStats(const std::string& identity) {
  codec::StatsMeta stats;
  for (const RouteTable::Edge& e : routes_.Edges()) {
    stats.edges.push_back({e.name, e.host, e.port, static_cast<uint32_t>(e.load)});
  }
  for (const WorkerPool::WorkerView& w : workers_.Workers()) {
    stats.workers.push_back({w.id, w.services, w.outstanding, w.served});
  }
  stats.sessions = sessions_.size();
  stats.requests = counters_.requests;
  stats.unavailable = counters_.unavailable;
  stats.rate_limited = counters_.rate_limited;
  stats.rate_limited_send = counters_.rate_limited_send;
  stats.refused_peers = refused_peers();
  stats.incarnation = incarnation_;
  stats.edge_readies = counters_.edge_readies;
  stats.worker_readies = counters_.worker_readies;
  stats.session_events = counters_.session_events;
  stats.ha_state = ha_state();
  stats.drained.assign(routes_.drained().begin(), routes_.drained().end());
  Send(identity, codec::BusType::kStats, codec::PackMeta(stats));
}

void Broker::PublishMetrics() {
  BrokerMetrics::Snapshot s;
  s.counters = counters_;
  s.refused_peers = refused_peers();
  s.sessions = sessions_.size();
  s.users = sessions_.users();
  s.in_flight = workers_.pending_count();
  s.ha_state = ha_state();
  for (const auto& [id, peer] : peers_) {
    if (peer.is_edge) ++s.edges;
  }
  std::map<std::string, BrokerMetrics::ServiceView> services;
  for (const WorkerPool::WorkerView& w : workers_.Workers()) {
    ++s.workers;
    for (const std::string& name : w.services) {
      BrokerMetrics::ServiceView& v = services[name];
      ++v.workers;
      v.outstanding += w.outstanding;
    }
  }
  for (const std::string& name : workers_.QueuedServices()) services[name];
  for (auto& [name, v] : services) {
    v.name = name;
    v.queued = workers_.QueuedFor(name);
    s.services.push_back(std::move(v));
  }
  metrics_->Publish(std::move(s));
}

void Broker::OnTimer() {
  const auto now = Clock::now();
  // The scan costs the length of the queues: at most every kQueueScanMs, not after
  // every batch of messages.
  std::vector<WorkerPool::Queued> expired;
  if (now >= next_queue_scan_) {
    next_queue_scan_ = now + std::chrono::milliseconds(kQueueScanMs);
    expired = workers_.TakeExpiredQueued(now);
  }
  for (const WorkerPool::Queued& q : expired) {
    if (SteadyDeadline(q.meta, now) <= now) {
      AnswerExpired(q.edge, q.meta);
    } else if (workers_.Serves(q.service)) {
      AnswerBusy(q.edge, q.meta, q.service, now - q.queued_at);
    } else {
      spdlog::info("broker: request conn {} for service {} expired in queue: no worker",
                   q.meta.conn, q.service);
      AnswerError(q.edge, q.meta, static_cast<int>(codec::Code::kUnavailable),
                  "no worker for service " + q.service);
    }
  }
  for (const WorkerPool::Pending& p : workers_.TakeExpired(now)) {
    uint64_t suppressed = 0;
    if (timeout_log_.Allow(&suppressed, now)) {
      spdlog::warn("broker: request rid {} to {} timed out{}", p.rid, p.worker,
                   suppressed > 0 ? fmt::format(" ({} more not logged)", suppressed) : "");
    }
    AnswerError(p.edge, p.meta, static_cast<int>(codec::Code::kUnavailable),
                "timed out waiting for the worker");
  }
  SettleDeparted(now);
  if (metrics_->Due(now)) PublishMetrics();
  if (ha_) HaTimer(now);
  if (now >= next_heartbeat_) {
    next_heartbeat_ = now + std::chrono::milliseconds(options_.heartbeat_ms);
    ReapDeadPeers();
    SendHeartbeats();
    user_limits_.Evict(now, kMaxBatch);
  }
}

void Broker::SendHeartbeats() {
  const std::string meta = codec::PackMeta(codec::Heartbeat{0, incarnation_});
  for (const auto& [identity, peer] : peers_) Send(identity, codec::BusType::kHeartbeat, meta);
}

void Broker::ReapDeadPeers() {
  const auto limit = std::chrono::milliseconds(options_.heartbeat_ms * options_.liveness);
  const auto now = Clock::now();
  std::vector<std::string> dead;
  for (const auto& [identity, peer] : peers_) {
    if (now - peer.last_heard > limit) dead.push_back(identity);
  }
  for (const std::string& identity : dead) RemovePeer(identity, "silent");
}

void Broker::RemovePeer(const std::string& identity, const char* why) {
  auto it = peers_.find(identity);
  if (it == peers_.end()) return;
  const Peer peer = it->second;
  peers_.erase(it);
  // Requests in a batch that failed this turn are held by the worker as well: they
  // are answered with the rest below, not handed on for a peer that has gone.
  unreachable_.erase(identity);
  if (peer.is_edge) {
    routes_.RemoveThread(identity);
    const size_t dropped = sessions_.DropEdge(identity);
    spdlog::info("broker: edge left: {} ({}); {} sessions dropped", identity, why, dropped);
    return;
  }
  std::vector<WorkerPool::Pending> held = workers_.RemoveWorker(identity);
  for (const WorkerPool::Pending& p : held) {
    AnswerError(
        p.edge, p.meta, static_cast<int>(codec::Code::kUnavailable),
        "the worker for service " + std::string(codec::ServiceName(p.meta.service)) + " died");
  }
  if (held.empty()) {
    spdlog::info("broker: worker left: {} ({})", identity, why);
  } else {
    spdlog::warn("broker: worker died: {} ({}); {} requests answered UNAVAILABLE", identity, why,
                 held.size());
  }
}

// Session side: replies (session actions, kicks), pushes fanned out per edge
// thread, BIND/UNBIND/DEPARTED, session lookups and presence events.

void Broker::OnReply(const std::string& worker, const std::string& meta, const std::string& body) {
  codec::ReplyMeta reply;
  if (!codec::UnpackMeta(meta, &reply)) {
    ++counters_.malformed;
    spdlog::warn("broker: unreadable REPLY from {}", worker);
    return;
  }
  std::optional<WorkerPool::Pending> p = workers_.TakePending(reply.rid);
  if (!p) {
    ++counters_.late_replies;
    spdlog::debug("broker: late reply rid {} from {} dropped", reply.rid, worker);
    return;
  }
  if (metrics_->on()) {
    // The deadline was set at the send: request_timeout_ms after it.
    const auto sent = p->deadline - std::chrono::milliseconds(options_.request_timeout_ms);
    metrics_->ObserveReply(p->meta.service,
                           std::chrono::duration<double>(Clock::now() - sent).count());
  }
  if (p->edge.empty()) return;  // the answer to the broker's own SESSION_EVENT
  if (peers_.count(p->edge) == 0) {
    ++counters_.dropped_replies;  // the edge died; its sessions are gone too
    return;
  }
  const uint64_t conn = p->meta.conn;
  const auto action = static_cast<codec::SessionAction>(reply.action);
  if (action == codec::SessionAction::kLogin && reply.session.uid != 0) {
    for (const auto& old : sessions_.Bind(p->edge, conn, reply.session)) Kick(old, kSameDevice);
  } else if (action == codec::SessionAction::kLogout) {
    sessions_.Unbind(p->edge, conn);
  }
  if (reply.kick_uid != 0) {
    for (const auto& s : sessions_.RemoveUserExcept(reply.kick_uid, p->edge, conn)) {
      Kick(s, reply.kick_reason);
    }
  }
  // The worker echoes conn; trust our own record if it did not.
  if (reply.conn != conn) {
    reply.conn = conn;
    if (Send(p->edge, codec::BusType::kReply, codec::PackMeta(reply), body)) ++counters_.replies;
    return;
  }
  if (Send(p->edge, codec::BusType::kReply, meta, body)) ++counters_.replies;
}

void Broker::Kick(const SessionTable::Session& s, const std::string& reason) {
  ++counters_.kicks;
  spdlog::info("broker: kick uid {} device '{}' on {} conn {}: {}", s.info.uid, s.info.device,
               s.edge, s.conn, reason);
  Send(s.edge, codec::BusType::kKick, codec::PackMeta(codec::KickMeta{s.conn, reason}));
}

void Broker::OnPush(const std::string& meta, const std::string& body) {
  codec::PushMeta push;
  if (!codec::UnpackMeta(meta, &push)) {
    ++counters_.malformed;
    return;
  }
  std::string skip_edge;
  uint64_t skip_conn = 0;
  if (push.skip_rid != 0) {
    if (const WorkerPool::Pending* p = workers_.FindPending(push.skip_rid)) {
      skip_edge = p->edge;
      skip_conn = p->meta.conn;
    }
  }
  std::sort(push.uids.begin(), push.uids.end());
  push.uids.erase(std::unique(push.uids.begin(), push.uids.end()), push.uids.end());
  std::map<std::string, codec::EdgePushMeta> per_edge;
  for (uint64_t uid : push.uids) {
    for (const SessionTable::Session& s : sessions_.SessionsOf(uid)) {
      if (s.conn == skip_conn && s.edge == skip_edge) continue;
      codec::EdgePushMeta& out = per_edge[s.edge];
      out.conns.push_back(s.conn);
    }
  }
  for (auto& [edge, out] : per_edge) {
    out.service = push.service;
    out.command = push.command;
    if (Send(edge, codec::BusType::kPush, codec::PackMeta(out), body)) ++counters_.pushes;
  }
}

void Broker::OnBind(const std::string& edge, const std::string& meta) {
  codec::BindMeta bind;
  if (!codec::UnpackMeta(meta, &bind) || bind.session.uid == 0) {
    ++counters_.malformed;
    return;
  }
  // Bound under a previous broker (we restarted, or took over from the other of a
  // pair): friends were told then that the user is online, so this is no news —
  // unless this broker has since told them the user went offline.
  const bool carried = bind.bound_at != 0 && bind.bound_at != incarnation_;
  if (carried) StartRebuild();
  const bool quiet = carried && forced_offline_.count(bind.session.uid) == 0;
  for (const auto& old : sessions_.Bind(edge, bind.conn, std::move(bind.session), quiet)) {
    Kick(old, kSameDevice);
  }
}

void Broker::OnDeparted(const std::string& edge, const std::string& meta) {
  codec::DepartedMeta departed;
  if (!codec::UnpackMeta(meta, &departed)) {
    ++counters_.malformed;
    return;
  }
  counters_.departed += departed.sessions.size();
  if (departed.bound_at == incarnation_) {
    // Closed under us: these are UNBINDs that may have been lost on the way.
    for (const auto& d : departed.sessions) sessions_.Unbind(edge, d.conn);
    return;
  }
  StartRebuild();
  // Closed while no broker heard (the previous one died first). Their friends heard
  // nothing: once the other edges have had time to re-bind, a user with no session
  // left is told offline (SettleDeparted).
  const auto settle = RebindTime();
  const auto at = Clock::now() + settle;
  for (const auto& d : departed.sessions) {
    sessions_.Unbind(edge, d.conn);
    if (d.uid != 0) departed_.push_back(Departed{d.uid, at});
  }
  spdlog::info(
      "broker: edge {} reports {} sessions closed while no broker heard; settling "
      "for {} ms",
      edge, departed.sessions.size(), settle.count());
}

void Broker::SettleDeparted(Clock::time_point now) {
  while (!departed_.empty() && departed_.front().settle_at <= now) {
    const uint64_t uid = departed_.front().uid;
    departed_.pop_front();
    if (!sessions_.SessionsOf(uid).empty()) continue;  // online elsewhere: no news
    auto [it, fresh] = forced_offline_.try_emplace(uid, now);
    if (!fresh && now - it->second < std::chrono::seconds(1)) continue;  // one per burst
    it->second = now;
    ++counters_.forced_offline;
    SendSessionEvent(uid, false);
  }
  if (!forced_offline_.empty() && departed_.empty() && now >= next_heartbeat_) {
    // Kept a minute: long enough for any late re-bind of the same users.
    std::erase_if(forced_offline_,
                  [&](const auto& e) { return now - e.second > std::chrono::minutes(1); });
  }
}

void Broker::OnUnbind(const std::string& edge, const std::string& meta) {
  codec::UnbindMeta unbind;
  if (!codec::UnpackMeta(meta, &unbind)) {
    ++counters_.malformed;
    return;
  }
  sessions_.Unbind(edge, unbind.conn);
}

void Broker::OnQuery(const std::string& worker, const std::string& meta) {
  codec::QueryMeta query;
  if (!codec::UnpackMeta(meta, &query)) {
    ++counters_.malformed;
    return;
  }
  ++counters_.queries;
  codec::QueryReplyMeta reply;
  reply.qid = query.qid;
  reply.users.reserve(query.uids.size());
  for (uint64_t uid : query.uids) {
    codec::UserSessions u;
    u.uid = uid;
    for (const SessionTable::Session& s : sessions_.SessionsOf(uid)) u.sessions.push_back(s.info);
    reply.users.push_back(std::move(u));
  }
  Send(worker, codec::BusType::kQuery, codec::PackMeta(reply));
}

void Broker::EmitSessionEvents() {
  for (const SessionTable::Change& c : sessions_.TakeChanges()) {
    if (c.online) forced_offline_.erase(c.uid);
    SendSessionEvent(c.uid, c.online);
  }
}

void Broker::SendSessionEvent(uint64_t uid, bool online) {
  ++counters_.session_events;
  spdlog::debug("broker: uid {} is now {}", uid, online ? "online" : "offline");
  codec::RequestMeta req;
  req.service = codec::ToWire(codec::Service::kPresence);
  req.command = codec::presence::kSessionEvent;
  req.uid = uid;
  codec::MapWriter w(2);
  w.Key("uid").Uint(uid);
  w.Key("online").Bool(online);
  // No edge: the reply is the broker's own and is dropped. Queued like any request
  // when no presence worker is up, and forgotten if none comes in time.
  Dispatch("", "presence", std::move(req), w.Finish(),
           Clock::now() + std::chrono::milliseconds(options_.queue_timeout_ms));
}

// ---- A primary/backup pair (Binary Star; docs/bus.md "A broker pair"): the state
// link to the other broker and the admission of peers by state.
void Broker::HaSetUp(zmq::context_t& ctx) {
  if (options_.ha_peer.empty()) return;
  const int timeout_ms =
      options_.ha_peer_timeout_ms > 0 ? options_.ha_peer_timeout_ms : 2 * options_.heartbeat_ms;
  ha_.emplace(!options_.ha_backup, std::chrono::milliseconds(timeout_ms), Clock::now());
  ha_pub_ = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::pub);
  ha_pub_->set(zmq::sockopt::linger, 0);
  ha_sub_ = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::sub);
  ha_sub_->set(zmq::sockopt::linger, 0);
  ha_sub_->set(zmq::sockopt::subscribe, "");
  ha_sub_->set(zmq::sockopt::reconnect_ivl, 100);
  ha_sub_->set(zmq::sockopt::reconnect_ivl_max, 250);
  if (!options_.curve_secret_key.empty()) {
    // Both brokers of a pair hold the same key pair: each admits its own public key,
    // so the state link needs no allow list of its own.
    ha_pub_->set(zmq::sockopt::curve_server, 1);
    if (zmq_setsockopt(ha_pub_->handle(), ZMQ_CURVE_SECRETKEY, options_.curve_secret_key.c_str(),
                       options_.curve_secret_key.size() + 1) != 0) {
      throw zmq::error_t();
    }
    ha_pub_->set(zmq::sockopt::zap_domain, "imbus");
    bus::CurveClientKeys keys;
    keys.secret_key = options_.curve_secret_key;
    std::string error;
    if (!bus::CurvePublicFromSecret(keys.secret_key, &keys.public_key, &error)) {
      throw std::runtime_error(error);
    }
    keys.server_public_key = keys.public_key;
    bus::SetCurveClient(*ha_sub_, keys);
  }
  ha_pub_->bind(options_.ha_bind);
  ha_sub_->connect(options_.ha_peer);
  next_ha_publish_ = Clock::now();
  spdlog::info(
      "broker: one of a pair, as the {}: state published on {}, the other's read "
      "from {}; it is gone after {} ms of silence",
      ha_->primary() ? "primary" : "backup", options_.ha_bind, options_.ha_peer, timeout_ms);
}

void Broker::HaRead() {
  for (;;) {
    zmq::message_t m;
    if (!ha_sub_->recv(m, zmq::recv_flags::dontwait)) return;
    if (m.size() != kStateSize) continue;
    const auto peer = static_cast<HaState>(m.data<uint8_t>()[0]);
    if (peer < HaState::kPrimary || peer > HaState::kPassive) continue;
    const HaState before = ha_->state();
    if (ha_->OnPeerState(peer, Clock::now())) {
      HaLogChange(HaStateName(before));
      if (ha_->active()) rebuilding_ = false;  // the next carried-over bind starts one
      if (before == HaState::kActive) ForgetAll();
    }
  }
}

void Broker::HaTimer(Clock::time_point now) {
  if (now < next_ha_publish_) return;
  next_ha_publish_ = now + std::chrono::milliseconds(options_.heartbeat_ms);
  char state[kStateSize];
  state[0] = static_cast<char>(ha_->state());
  std::memcpy(state + 1, &incarnation_, sizeof(incarnation_));
  (void)ha_pub_->send(zmq::buffer(state, sizeof(state)), zmq::send_flags::dontwait);
}

bool Broker::HaAdmit(const std::string& identity, Clock::time_point now) {
  const HaState before = ha_->state();
  if (ha_->OnClientRequest(now)) {
    if (before != HaState::kActive) {
      HaLogChange(HaStateName(before));
      rebuilding_ = false;  // the next carried-over bind starts one
    }
    return true;
  }
  ++counters_.not_active;
  uint64_t suppressed = 0;
  if (not_active_log_.Allow(&suppressed, now)) {
    spdlog::info(
        "broker: {} ({}): {} turned away, the other broker serves ({} more since "
        "the last line); the other was last heard {} ms ago",
        HaStateName(before), ha_->primary() ? "primary" : "backup", identity, suppressed,
        ha_->PeerSilence(now).count());
  }
  Send(identity, codec::BusType::kNotActive, {});
  return false;
}

void Broker::HaLogChange(const char* from) {
  spdlog::warn("broker: {} -> {} ({}): {}; the other broker was last heard {} ms ago", from,
               HaStateName(ha_->state()), ha_->primary() ? "primary" : "backup", ha_->reason(),
               ha_->PeerSilence(Clock::now()).count());
}

void Broker::ForgetAll() {
  // Workers first: what they hold is answered UNAVAILABLE while the edges are known.
  std::vector<std::string> ids;
  for (const auto& [identity, peer] : peers_) {
    if (!peer.is_edge) ids.push_back(identity);
  }
  for (const std::string& id : ids) RemovePeer(id, "this broker stepped down");
  // So is what waits in the queue for a worker (the edges would only time it out).
  // The broker's own presence events go: the active broker owns presence now.
  for (const std::string& service : workers_.QueuedServices()) {
    while (std::optional<WorkerPool::Queued> q = workers_.PopQueued(service)) {
      if (q->edge.empty()) continue;
      AnswerError(q->edge, q->meta, static_cast<int>(codec::Code::kUnavailable),
                  "this broker stepped down; retry");
    }
  }
  // Those answers wait in the edges' batches (Send): they go now, before the edges
  // are forgotten with them.
  FlushBatches();
  const size_t sessions = sessions_.size();
  peers_.clear();
  routes_ = RouteTable();
  sessions_ = SessionTable();  // silently: the active broker owns presence now
  departed_.clear();
  forced_offline_.clear();
  spdlog::warn(
      "broker: stepped down: forgot {} sessions; edges and workers move to the other "
      "broker",
      sessions);
}

// imbus-ctl: the ADMIN messages (kick, broadcast, drain; docs/operations.md).

namespace {

constexpr const char* kKickedByAdmin = "kicked by an administrator";

// The uid `s` spells, or 0 when it is not a plain decimal number that fits.
uint64_t ParseUid(const std::string& s) {
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() ? v : 0;
}

}  // namespace

void Broker::OnAdmin(const std::string& identity, const std::string& peer_key,
                     const std::string& meta) {
  codec::AdminReplyMeta reply;
  codec::AdminMeta req;
  if (!codec::UnpackMeta(meta, &req)) {
    ++counters_.malformed;
    reply.code = static_cast<int>(codec::Code::kBadRequest);
    reply.error = "unreadable ADMIN message";
  } else if (auth_ && std::find(options_.curve_admin.begin(), options_.curve_admin.end(),
                                peer_key) == options_.curve_admin.end()) {
    spdlog::warn("broker: ADMIN {} refused: key {} is not an admin key", req.command,
                 bus::CurveKeyPrefix(peer_key));
    reply.code = static_cast<int>(codec::Code::kForbidden);
    reply.error = "this CURVE key may not administer the broker (--curve-admin-keys)";
  } else if (ha_ && ha_->state() != HaState::kActive) {
    reply.code = static_cast<int>(codec::Code::kUnavailable);
    reply.error = std::string("this broker is ") + ha_state() + "; ask the other of the pair";
  } else if (req.command == "kick") {
    AdminKick(req.arg, &reply);
  } else if (req.command == "broadcast") {
    AdminBroadcast(req.arg, &reply);
  } else if (req.command == "drain" || req.command == "undrain") {
    if (req.command == "drain") {
      AdminDrain(req.arg, &reply);
    } else if (!routes_.Undrain(req.arg)) {
      reply.code = static_cast<int>(codec::Code::kNotFound);
      reply.error = "edge " + req.arg + " is not drained";
    } else {
      spdlog::info("broker: edge {} undrained (imbus-ctl): SYS/ROUTE hands it out again", req.arg);
    }
  } else {
    reply.code = static_cast<int>(codec::Code::kUnsupported);
    reply.error = "unknown ADMIN command '" + req.command + "'";
  }
  Send(identity, codec::BusType::kAdmin, codec::PackMeta(reply));
}

void Broker::AdminKick(const std::string& user, codec::AdminReplyMeta* reply) {
  // A uid, or a user name (the name the sessions logged in with).
  uint64_t uid = ParseUid(user);
  if (uid == 0) {
    for (const SessionTable::Session& s : sessions_.All()) {
      if (s.info.name == user) {
        uid = s.info.uid;
        break;
      }
    }
  }
  const std::vector<SessionTable::Session> gone =
      uid == 0 ? std::vector<SessionTable::Session>{}
               : sessions_.RemoveUserExcept(uid, std::string(), 0);
  if (gone.empty()) {
    reply->code = static_cast<int>(codec::Code::kNotFound);
    reply->error = "no session of " + user;
    return;
  }
  spdlog::info("broker: kicking uid {} ({} sessions) for imbus-ctl", uid, gone.size());
  for (const SessionTable::Session& s : gone) Kick(s, kKickedByAdmin);
  reply->count = gone.size();
}

void Broker::AdminBroadcast(const std::string& text, codec::AdminReplyMeta* reply) {
  if (text.empty() || !codec::IsValidUtf8(text) || text.size() > 4000) {
    reply->code = static_cast<int>(codec::Code::kBadRequest);
    reply->error = "the text must be 1..4000 bytes of UTF-8";
    return;
  }
  codec::MapWriter w(2);
  w.Key("text").Str(text);
  w.Key("ts").Int(net::WallNowMs());
  const std::string body = w.Finish();
  std::map<std::string, codec::EdgePushMeta> per_edge;
  for (const SessionTable::Session& s : sessions_.All()) per_edge[s.edge].conns.push_back(s.conn);
  for (auto& [edge, out] : per_edge) {
    out.service = codec::ToWire(codec::Service::kSys);
    out.command = codec::sys::kNotice;
    reply->count += out.conns.size();
    if (Send(edge, codec::BusType::kPush, codec::PackMeta(out), body)) ++counters_.pushes;
  }
  spdlog::info("broker: broadcast of {} bytes to {} sessions (imbus-ctl)", text.size(),
               reply->count);
}

void Broker::AdminDrain(const std::string& edge, codec::AdminReplyMeta* reply) {
  if (edge.empty()) {
    reply->code = static_cast<int>(codec::Code::kBadRequest);
    reply->error = "name the edge to drain";
    return;
  }
  routes_.Drain(edge);
  // Where its clients should go: the least loaded edge still in service.
  const std::optional<RouteTable::Edge> next = routes_.LeastLoaded();
  if (!next || routes_.IsDrained(next->name)) {
    spdlog::warn("broker: edge {} drained, but no edge in service to send its clients to", edge);
    reply->error = "no other edge in service: its clients were not told to move";
    return;
  }
  codec::MapWriter w(3);
  w.Key("reason").Str("edge " + edge + " is draining");
  w.Key("host").Str(next->host);
  w.Key("port").Uint(next->port);
  const std::string body = w.Finish();
  std::map<std::string, codec::EdgePushMeta> per_edge;
  for (const SessionTable::Session& s : sessions_.All()) {
    const RouteTable::Edge* on = routes_.EdgeOf(s.edge);
    if (on != nullptr && on->name == edge) per_edge[s.edge].conns.push_back(s.conn);
  }
  for (auto& [identity, out] : per_edge) {
    out.service = codec::ToWire(codec::Service::kSys);
    out.command = codec::sys::kReconnect;
    reply->count += out.conns.size();
    if (Send(identity, codec::BusType::kPush, codec::PackMeta(out), body)) ++counters_.pushes;
  }
  spdlog::info("broker: edge {} drained (imbus-ctl): {} sessions told to reconnect to {}:{}", edge,
               reply->count, next->host, next->port);
}

}  // namespace imbus::broker
