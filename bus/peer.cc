#include "bus/peer.h"

#include <unistd.h>

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

constexpr int kMonitorEvents = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
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
      if (!socket.send(zmq::buffer(identity), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        return false;
      }
    }
    // Once the first part is accepted the rest of a multipart message is too.
    if (!socket.send(zmq::buffer(&t, 1), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      return false;
    }
    socket.send(zmq::buffer(meta),
                has_body ? zmq::send_flags::sndmore | zmq::send_flags::dontwait
                         : zmq::send_flags::dontwait);
    if (has_body) socket.send(zmq::buffer(body), zmq::send_flags::dontwait);
    return true;
  } catch (const zmq::error_t& e) {
    // EHOSTUNREACH from ROUTER_MANDATORY: the peer is gone.
    return false;
  }
}

BusPeer::BusPeer(zmq::context_t& ctx, Options options)
    : ctx_(ctx), options_(std::move(options)) {
  Connect();
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

void BusPeer::Connect() {
  CloseSocket();
  ++generation_;
  identity_ = options_.identity_prefix + "/" + std::to_string(::getpid()) + "/" + RandomSuffix();
  socket_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
  socket_->set(zmq::sockopt::routing_id, identity_);
  socket_->set(zmq::sockopt::linger, 0);
  socket_->set(zmq::sockopt::reconnect_ivl, 100);
  socket_->set(zmq::sockopt::reconnect_ivl_max, 1000);
  socket_->set(zmq::sockopt::maxmsgsize, int64_t{4} << 20);
  socket_->set(zmq::sockopt::sndhwm, 100000);
  socket_->set(zmq::sockopt::rcvhwm, 100000);
  SetCurveClient(*socket_, options_.curve);
  // Handshake failures are invisible otherwise (the DEALER just never delivers), so
  // watch them; the monitor is per socket, hence the identity in its name.
  const std::string monitor_endpoint = "inproc://imbus-bus-monitor/" + identity_;
  if (zmq_socket_monitor(socket_->handle(), monitor_endpoint.c_str(), kMonitorEvents) == 0) {
    monitor_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::pair);
    monitor_->set(zmq::sockopt::linger, 0);
    monitor_->connect(monitor_endpoint);
  }
  socket_->connect(options_.endpoint);
  last_heard_ = Clock::now();
  SendReady();
}

void BusPeer::SendReady() {
  SendBus(*socket_, {}, codec::BusType::kReady, codec::PackMeta(options_.ready), {});
  last_sent_ = Clock::now();
  last_heartbeat_ = last_sent_;
  if (on_connected_) on_connected_();
}

int BusPeer::fd() const { return socket_->get(zmq::sockopt::fd); }

bool BusPeer::Send(codec::BusType type, std::string_view meta, std::string_view body) {
  const bool ok = SendBus(*socket_, {}, type, meta, body);
  if (ok) last_sent_ = Clock::now();
  return ok;
}

bool BusPeer::TryRecv(BusMessage* out) {
  for (;;) {
    zmq::message_t part;
    if (!socket_->recv(part, zmq::recv_flags::dontwait)) return false;
    last_heard_ = Clock::now();
    std::string parts[3];
    size_t n = 0;
    parts[n++] = part.to_string();
    while (part.more()) {
      if (!socket_->recv(part, zmq::recv_flags::none)) break;
      if (n < 3) parts[n++] = part.to_string();
    }
    if (parts[0].size() != 1) continue;  // not ours; drop
    const auto type = static_cast<codec::BusType>(parts[0][0]);
    if (type == codec::BusType::kHeartbeat) continue;
    if (type == codec::BusType::kUnknownPeer) {
      spdlog::warn("bus: broker does not know {} (restarted?); announcing again", identity_);
      SendReady();
      continue;
    }
    out->type = type;
    out->meta = n > 1 ? std::move(parts[1]) : std::string();
    out->body = n > 2 ? std::move(parts[2]) : std::string();
    return true;
  }
}

bool BusPeer::WaitReadable(int timeout_ms) {
  zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms));
  return (item.revents & ZMQ_POLLIN) != 0;
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
    uint64_t suppressed = 0;
    if (!handshake_log_.Allow(&suppressed)) continue;
    const std::string also =
        suppressed > 0 ? " (" + std::to_string(suppressed) + " similar not logged)" : "";
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
      spdlog::error("bus: broker {} refused our CURVE key {} (status {}): add our public key "
                    "to the broker's allow list{}",
                    options_.endpoint, CurveKeyPrefix(options_.curve.public_key), value, also);
    } else {
      spdlog::error("bus: security handshake with broker {} failed ({}): CURVE must be on at "
                    "both ends, with the broker's public key as --curve-server-key{}",
                    options_.endpoint,
                    id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? DescribeHandshakeError(value)
                                                              : "no detail",
                    also);
    }
  }
}

void BusPeer::Tick(uint32_t load) {
  const auto now = Clock::now();
  DrainMonitor();
  if (!broker_alive()) {
    spdlog::warn("bus: no word from broker {} for {} ms; reconnecting{}", options_.endpoint,
                 options_.heartbeat_ms * options_.liveness,
                 options_.curve.enabled()
                     ? " (CURVE on: is our public key " +
                           CurveKeyPrefix(options_.curve.public_key) +
                           " on the broker's allow list, and --curve-server-key right?)"
                     : std::string());
    Connect();
    return;
  }
  // Heartbeat every interval even when other traffic flows: it carries the edge's
  // load, which the broker's route table must not see go stale on a busy edge.
  if (now - last_heartbeat_ >= std::chrono::milliseconds(options_.heartbeat_ms)) {
    Send(codec::BusType::kHeartbeat, codec::PackMeta(codec::Heartbeat{load}));
    last_heartbeat_ = now;
  }
}

}  // namespace imbus::bus
