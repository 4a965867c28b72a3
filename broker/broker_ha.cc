// Broker methods for a primary/backup pair (Binary Star; docs/bus.md "A broker
// pair"): the state link to the other broker and the admission of peers by state.
// Same class and thread as broker.cc.
#include <cstring>

#include <spdlog/spdlog.h>

#include "broker/broker.h"
#include "bus/curve.h"
#include "bus/peer.h"
#include "codec/codes.h"

namespace imbus::broker {

namespace {
// A state message: [state: 1 byte][incarnation: 8 bytes, little-endian].
constexpr size_t kStateSize = 9;
}  // namespace

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

}  // namespace imbus::broker
