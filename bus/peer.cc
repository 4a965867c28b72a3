#include "bus/peer.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>

#include <spdlog/spdlog.h>

namespace imbus::bus {

using Clock = std::chrono::steady_clock;

namespace {
std::string RandomSuffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char kHex[] = "0123456789abcdef";
  std::string s(8, '0');
  uint64_t v = rng();
  for (char& c : s) {
    c = kHex[v & 15];
    v >>= 4;
  }
  return s;
}
void SetZ85(zmq::socket_t& socket, int option, const std::string& key) {
  // 41 bytes: libzmq takes a Z85 key with its terminating NUL.
  if (zmq_setsockopt(socket.handle(), option, key.c_str(), key.size() + 1) != 0) {
    throw zmq::error_t();
  }
}

constexpr int kMonitorEvents =
    ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
    ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECT_RETRIED;
}  // namespace

void SetCurveClient(zmq::socket_t& socket, const CurveClientKeys& keys) {
  if (!keys.enabled()) return;
  SetZ85(socket, ZMQ_CURVE_SERVERKEY, keys.server_public_key);
  SetZ85(socket, ZMQ_CURVE_PUBLICKEY, keys.public_key);
  SetZ85(socket, ZMQ_CURVE_SECRETKEY, keys.secret_key);
}

bool SendBus(zmq::socket_t& socket, std::string_view identity, codec::BusType type,
             std::string_view meta, std::string_view body) {
  const char t = static_cast<char>(type);
  const bool has_body = !body.empty();
  try {
    if (!identity.empty()) {
      if (!socket.send(zmq::buffer(identity),
                       zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        return false;
      }
    }
    // Once the first part is accepted the rest of a multipart message is too.
    if (!socket.send(zmq::buffer(&t, 1), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      return false;
    }
    socket.send(zmq::buffer(meta), has_body ? zmq::send_flags::sndmore | zmq::send_flags::dontwait
                                            : zmq::send_flags::dontwait);
    if (has_body) socket.send(zmq::buffer(body), zmq::send_flags::dontwait);
    return true;
  } catch (const zmq::error_t& e) {
    // EHOSTUNREACH from ROUTER_MANDATORY: the peer is gone.
    return false;
  }
}

BusPeer::BusPeer(zmq::context_t& ctx, Options options) : ctx_(ctx), options_(std::move(options)) {
  options_.ready.features |= codec::kFeatureBatch;  // TryRecv takes batches apart
  size_t from = 0;
  const std::string& list = options_.endpoint;
  while (from <= list.size()) {
    size_t comma = list.find(',', from);
    if (comma == std::string::npos) comma = list.size();
    if (comma > from) endpoints_.push_back(list.substr(from, comma - from));
    from = comma + 1;
  }
  if (endpoints_.empty()) endpoints_.push_back(list);
  identity_ = options_.identity_prefix + "/" + std::to_string(::getpid()) + "/" + RandomSuffix();
  Connect(0);
}

BusPeer::~BusPeer() { CloseSocket(); }

void BusPeer::CloseSocket() {
  if (socket_) {
    if (monitor_) zmq_socket_monitor(socket_->handle(), nullptr, 0);
    socket_->close();
    socket_.reset();
  }
  if (monitor_) {
    monitor_->close();
    monitor_.reset();
  }
}

void BusPeer::Connect(size_t index) {
  // What was queued on the old socket (requests sent while a broker had not yet
  // accepted us) goes with it.
  queued_.Clear();  // not for this connection's broker
  if (socket_) Lost("moving to a new connection");
  CloseSocket();
  current_ = index % endpoints_.size();
  socket_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
  // The same identity on every connection: the broker (ROUTER_HANDOVER) moves it to
  // the new connection, so a reconnect to a broker that still knows us is no news.
  socket_->set(zmq::sockopt::routing_id, identity_);
  socket_->set(zmq::sockopt::linger, 0);
  // Reconnect attempts stay frequent: a restarted broker is found within 250 ms.
  socket_->set(zmq::sockopt::reconnect_ivl, 100);
  socket_->set(zmq::sockopt::reconnect_ivl_max, 250);
  socket_->set(zmq::sockopt::maxmsgsize, int64_t{4} << 20);
  socket_->set(zmq::sockopt::sndhwm, 100000);
  socket_->set(zmq::sockopt::rcvhwm, 100000);
  SetCurveClient(*socket_, options_.curve);
  // The monitor tells what ZeroMQ otherwise hides: a refused handshake (the DEALER
  // just never delivers) and a dropped connection (the broker died); it is per
  // socket, hence the identity and the endpoint index in its name.
  static std::atomic<uint64_t> monitors{0};
  const std::string monitor_endpoint =
      "inproc://imbus-bus-monitor/" + identity_ + "/" + std::to_string(monitors++);
  if (zmq_socket_monitor(socket_->handle(), monitor_endpoint.c_str(), kMonitorEvents) == 0) {
    monitor_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::pair);
    monitor_->set(zmq::sockopt::linger, 0);
    monitor_->connect(monitor_endpoint);
  }
  socket_->connect(endpoints_[current_]);
  connected_at_ = Clock::now();
  last_heard_ = connected_at_;
  move_pending_ = false;
  SendReady();
}

void BusPeer::SendReady() {
  SendBus(*socket_, {}, codec::BusType::kReady, codec::PackMeta(options_.ready), {});
  last_sent_ = Clock::now();
  last_heartbeat_ = last_sent_;
  awaiting_ack_ = true;
  broker_features_ = 0;  // until this broker's answer says what it takes
  ready_sent_at_ = last_sent_;
  if (on_connected_) on_connected_(confirmed_);
}

void BusPeer::Lost(const char* why) {
  queued_.Clear();  // the owner answers it all UNAVAILABLE now; none of it may go later
  spdlog::debug("bus: {}: lost broker {} ({}); requests in flight are answered UNAVAILABLE",
                identity_, endpoint(), why);
  if (on_broker_lost_) on_broker_lost_();
}

void BusPeer::MoveOn(const char* why) {
  if (endpoints_.size() < 2) return;
  // A broker that accepted us and now turns us away stepped down: what it held is lost.
  if (!awaiting_ack_ && !move_pending_) Lost(why);
  const auto dwell = std::chrono::milliseconds(std::max(options_.heartbeat_ms / 4, 50));
  if (Clock::now() - connected_at_ < dwell) {
    move_pending_ = true;
    return;
  }
  const size_t next = (current_ + 1) % endpoints_.size();
  spdlog::info("bus: {}: broker {} {}; trying {}", identity_, endpoint(), why, endpoints_[next]);
  Connect(next);
}

int BusPeer::fd() const { return socket_->get(zmq::sockopt::fd); }

bool BusPeer::Queue(codec::BusType type, std::string_view meta, std::string_view body) {
  if ((broker_features_ & codec::kFeatureBatch) == 0) return Send(type, meta, body);
  queued_.Add(type, meta, body);
  constexpr size_t kMaxQueuedBytes = 256 << 10;
  return queued_.bytes() < kMaxQueuedBytes || Flush();
}

bool BusPeer::Flush() {
  if (queued_.empty()) return true;
  codec::BatchWriter batch;
  std::swap(batch, queued_);
  return SendBatch(batch);  // one by one if the broker no longer takes batches
}

bool BusPeer::Send(codec::BusType type, std::string_view meta, std::string_view body) {
  if (!queued_.empty()) Flush();  // what was queued goes first
  const bool ok = SendBus(*socket_, {}, type, meta, body);
  if (ok) last_sent_ = Clock::now();
  return ok;
}

bool BusPeer::SendBatch(const codec::BatchWriter& batch) {
  if (batch.empty()) return true;
  if (batch.count() > 1 && (broker_features_ & codec::kFeatureBatch) != 0) {
    return Send(codec::BusType::kBatch, {}, batch.data());
  }
  codec::BatchReader items(batch.data());
  codec::BusType type{};
  std::string_view meta, body;
  bool ok = true;
  while (items.Next(&type, &meta, &body)) ok = Send(type, meta, body) && ok;
  return ok;
}

bool BusPeer::TryRecv(BusMessage* out) {
  if (!unbatched_.empty()) {
    *out = std::move(unbatched_.front());
    unbatched_.pop_front();
    return true;
  }
  for (;;) {
    zmq::message_t part;
    if (!socket_->recv(part, zmq::recv_flags::dontwait)) return false;
    std::string parts[3];
    size_t n = 0;
    parts[n++] = part.to_string();
    while (part.more()) {
      if (!socket_->recv(part, zmq::recv_flags::none)) break;
      if (n < 3) parts[n++] = part.to_string();
    }
    if (parts[0].size() != 1) continue;  // not ours; drop
    const auto type = static_cast<codec::BusType>(parts[0][0]);
    if (type == codec::BusType::kNotActive) {
      // A passive broker of a pair: alive, but not serving; no sign of life for us.
      MoveOn("is passive");
      continue;
    }
    const auto now = Clock::now();
    codec::Heartbeat hb;
    const bool has_incarnation =
        (type == codec::BusType::kHeartbeat || type == codec::BusType::kUnknownPeer) && n > 1 &&
        codec::UnpackMeta(parts[1], &hb) && hb.incarnation != 0;
    if (type == codec::BusType::kUnknownPeer) {
      // A restarted broker's UNKNOWN_PEER comes over the new connection, and the
      // monitor may still hold the drop of the old one (read in Tick, after the
      // messages): act on that first, so one READY answers both instead of two (a
      // second READY makes the broker drop what the first one began).
      const zmq::socket_t* before = socket_.get();
      DrainMonitor();
      if (socket_.get() != before) continue;  // moved to the other broker of a pair
      // Answers to what we sent before our READY reached it are expected; only a
      // broker that forgot us after accepting (or a READY lost for longer than the
      // liveness window) makes us announce again.
      const auto patience = std::chrono::milliseconds(options_.heartbeat_ms * options_.liveness);
      if (awaiting_ack_ && now - ready_sent_at_ < patience) continue;
      last_heard_ = now;
      uint64_t suppressed = 0;
      if (unknown_log_.Allow(&suppressed)) {
        spdlog::warn("bus: {}: broker {} does not know us (restarted?); announcing again",
                     identity_, endpoint());
      }
      Lost("it does not know us");
      SendReady();
      continue;
    }
    last_heard_ = now;
    if (awaiting_ack_) {
      awaiting_ack_ = false;
      move_pending_ = false;
      if (has_incarnation && hb.incarnation != confirmed_) {
        spdlog::info("bus: {}: accepted by broker {} (incarnation {:016x})", identity_, endpoint(),
                     hb.incarnation);
      }
    }
    if (has_incarnation) {
      confirmed_ = hb.incarnation;
      broker_features_ = hb.features;
    }
    last_served_ = now;
    if (type == codec::BusType::kHeartbeat) continue;
    if (type == codec::BusType::kBatch) {
      // Only replies, pushes and the like come batched (the broker sends what changes
      // our connection state — heartbeats, UNKNOWN_PEER, NOT_ACTIVE — on their own).
      codec::BatchReader items(n > 2 ? std::string_view(parts[2]) : std::string_view());
      codec::BusType t{};
      std::string_view meta, body;
      while (items.Next(&t, &meta, &body)) {
        if (t == codec::BusType::kHeartbeat || t == codec::BusType::kUnknownPeer ||
            t == codec::BusType::kNotActive) {
          continue;
        }
        unbatched_.push_back(BusMessage{t, std::string(meta), std::string(body)});
      }
      if (!items.ok()) spdlog::warn("bus: {}: malformed batch from the broker", identity_);
      if (unbatched_.empty()) continue;
      *out = std::move(unbatched_.front());
      unbatched_.pop_front();
      return true;
    }
    out->type = type;
    out->meta = n > 1 ? std::move(parts[1]) : std::string();
    out->body = n > 2 ? std::move(parts[2]) : std::string();
    return true;
  }
}

bool BusPeer::WaitReadable(int timeout_ms) {
  if (!unbatched_.empty()) return true;
  zmq::pollitem_t items[2] = {{socket_->handle(), 0, ZMQ_POLLIN, 0}, {}};
  size_t n = 1;
  if (monitor_) items[n++] = {monitor_->handle(), 0, ZMQ_POLLIN, 0};
  // Until a broker accepts us, Tick() has timers to run (moving on, the dwell).
  if (awaiting_ack_ || move_pending_) timeout_ms = std::min(timeout_ms, 50);
  try {
    zmq::poll(items, n, std::chrono::milliseconds(timeout_ms));
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) throw;
  }
  return (items[0].revents & ZMQ_POLLIN) != 0;
}

bool BusPeer::broker_alive() const {
  return Clock::now() - last_heard_ <
         std::chrono::milliseconds(options_.heartbeat_ms * options_.liveness);
}

void BusPeer::DrainMonitor() {
  if (!monitor_) return;
  for (;;) {
    zmq::message_t event;
    if (!monitor_->recv(event, zmq::recv_flags::dontwait)) return;
    zmq::message_t address;
    if (event.more()) (void)monitor_->recv(address, zmq::recv_flags::none);
    if (event.size() < 6) continue;
    uint16_t id = 0;
    uint32_t value = 0;
    std::memcpy(&id, event.data(), sizeof(id));
    std::memcpy(&value, event.data<char>() + 2, sizeof(value));
    if (id == ZMQ_EVENT_DISCONNECTED) {
      // Whatever the broker had of ours is gone with the connection (a new broker
      // process, or the same one, drops the replies for it): answer now, announce
      // again behind it (queued until the reconnect), or try the other broker.
      Lost("connection dropped");
      spdlog::info("bus: {}: connection to broker {} dropped; announcing again when it is back",
                   identity_, endpoint());
      if (endpoints_.size() > 1) {
        const size_t next = (current_ + 1) % endpoints_.size();
        spdlog::info("bus: {}: trying {}", identity_, endpoints_[next]);
        Connect(next);
        return;  // the old monitor is gone
      }
      SendReady();
      continue;
    }
    if (id == ZMQ_EVENT_CONNECT_RETRIED) {
      // Nothing listens there (yet): with a pair, the other one may.
      if (awaiting_ack_ && endpoints_.size() > 1) {
        MoveOn("refuses connections");
        if (!move_pending_) return;  // moved: the old monitor is gone
      }
      continue;
    }
    uint64_t suppressed = 0;
    if (!handshake_log_.Allow(&suppressed)) continue;
    const std::string also =
        suppressed > 0 ? " (" + std::to_string(suppressed) + " similar not logged)" : "";
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
      spdlog::error(
          "bus: broker {} refused our CURVE key {} (status {}): add our public key "
          "to the broker's allow list{}",
          endpoint(), CurveKeyPrefix(options_.curve.public_key), value, also);
    } else {
      spdlog::error(
          "bus: security handshake with broker {} failed ({}): CURVE must be on at "
          "both ends, with the broker's public key as --curve-server-key{}",
          endpoint(),
          id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? DescribeHandshakeError(value) : "no detail",
          also);
    }
  }
}

void BusPeer::Tick(uint32_t load) {
  const auto now = Clock::now();
  DrainMonitor();
  if (!broker_alive()) {
    const size_t next = (current_ + 1) % endpoints_.size();
    spdlog::warn("bus: {}: no word from broker {} for {} ms; {}{}", identity_, endpoint(),
                 options_.heartbeat_ms * options_.liveness,
                 endpoints_.size() > 1 ? "trying " + endpoints_[next] : "reconnecting",
                 options_.curve.enabled()
                     ? " (CURVE on: is our public key " +
                           CurveKeyPrefix(options_.curve.public_key) +
                           " on the broker's allow list, and --curve-server-key right?)"
                     : std::string());
    Lost("silent");
    Connect(next);
    return;
  }
  if (move_pending_) {
    MoveOn("is not serving us");
    if (!move_pending_) return;
  } else if (awaiting_ack_ && endpoints_.size() > 1 &&
             now - ready_sent_at_ >= std::chrono::milliseconds(options_.heartbeat_ms / 2)) {
    // No answer to READY: the broker there may be dead; a pair's other one may serve.
    MoveOn("does not answer");
    if (!move_pending_) return;
  }
  // Heartbeat every interval even when other traffic flows: it carries the edge's
  // load, which the broker's route table must not see go stale on a busy edge.
  if (now - last_heartbeat_ >= std::chrono::milliseconds(options_.heartbeat_ms)) {
    Send(codec::BusType::kHeartbeat, codec::PackMeta(codec::Heartbeat{load, 0}));
    last_heartbeat_ = now;
  }
}

}  // namespace imbus::bus
