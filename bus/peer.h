// Public. BusPeer: one DEALER connection from an edge thread or an actor worker to
// the broker, with the application heartbeats and the reconnect logic of the
// Paranoid Pirate pattern (libzmq 4.3.4 has no ROUTER_NOTIFY).
//
// Not thread-safe: a BusPeer and its socket belong to the thread that made it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "bus/curve.h"
#include "net/log_limiter.h"
#include "codec/bus.h"

namespace imbus::bus {

struct BusMessage {
  codec::BusType type = codec::BusType::kHeartbeat;
  std::string meta;
  std::string body;
};

class BusPeer {
 public:
  struct Options {
    // The broker, or a pair of brokers (primary and backup, Binary Star) separated by
    // a comma: "tcp://a:5555,tcp://b:5555". With a pair the peer talks to one at a
    // time and moves to the other when the one it uses goes silent or is passive.
    std::string endpoint;         // tcp://127.0.0.1:5555
    codec::Ready ready;           // sent on every (re)connect
    int heartbeat_ms = 1000;      // our heartbeat interval
    int liveness = 3;             // broker dead after this many silent intervals
    std::string identity_prefix;  // for logs and broker stats: "edge-a/0", "auth"
    CurveClientKeys curve;        // empty: CURVE off (plain ZMTP)
  };

  BusPeer(zmq::context_t& ctx, Options options);
  ~BusPeer();
  BusPeer(const BusPeer&) = delete;
  BusPeer& operator=(const BusPeer&) = delete;

  // Called right after READY went out to a broker that may not know us (first
  // connect, a dropped connection, a broker that forgot us, a move to the other
  // broker of a pair), so the owner can re-announce its state behind the READY (edges
  // re-bind their logged-in connections). `bound_at`: the incarnation of the broker
  // that accepted us before (0: none).
  void set_on_connected(std::function<void(uint64_t bound_at)> f) { on_connected_ = std::move(f); }
  // Called when what was sent to the broker can no longer be answered: the
  // connection dropped, the broker went silent past liveness, or it forgot us. The
  // owner answers its requests in flight at once instead of at their deadline.
  void set_on_broker_lost(std::function<void()> f) { on_broker_lost_ = std::move(f); }

  // The ZMQ_FD of the current socket, for epoll. Changes after a reconnect: compare
  // with the previous value after Tick().
  int fd() const;

  // Queues a message to the broker without blocking. False when it could not be
  // queued (HWM reached or no connection): the caller decides (answer UNAVAILABLE).
  bool Send(codec::BusType type, std::string_view meta, std::string_view body = {});
  // Sends the items of `batch` in order: as one kBatch message when the broker that
  // accepted us takes batches (and there is more than one), else one by one. False
  // when not all could be queued.
  bool SendBatch(const codec::BatchWriter& batch);
  // Like Send, but when the broker takes batches the message waits in a batch until
  // Flush() (or the next Send, which flushes first: the order is kept). Callers that
  // queue call Flush() before they wait; it returns false when the batch could not be
  // queued (then none of it went).
  bool Queue(codec::BusType type, std::string_view meta, std::string_view body = {});
  bool Flush();
  size_t queued() const { return queued_.count(); }

  // Takes one message, if any, without blocking. Heartbeats, kUnknownPeer and
  // kNotActive are handled here and not returned; a kBatch is returned item by item.
  bool TryRecv(BusMessage* out);

  // Waits up to `timeout_ms` for input (actors' blocking loop; edges use fd()).
  // Returns sooner when the connection changes state, so Tick() sees it.
  bool WaitReadable(int timeout_ms);

  // Call often (at least every heartbeat interval, better every ~100 ms): reads the
  // connection's events, sends our heartbeat (with `load`), declares the broker dead
  // after `liveness` silent intervals and reconnects (or moves to the other broker).
  void Tick(uint32_t load);

  const std::string& identity() const { return identity_; }
  const std::string& endpoint() const { return endpoints_[current_]; }
  // The incarnation of the broker that accepted our READY last (0: none yet).
  uint64_t incarnation() const { return confirmed_; }
  bool broker_alive() const;
  // When a broker that had accepted our READY last said anything to us: what we sent
  // it well before that, it has read.
  std::chrono::steady_clock::time_point last_served() const { return last_served_; }

 private:
  using Clock = std::chrono::steady_clock;

  // A new socket (same identity) to endpoints_[index], then READY.
  void Connect(size_t index);
  void SendReady();
  // With a pair: moves to the other broker now, or as soon as we have stayed
  // `dwell` on this one (no ping-pong faster than that).
  void MoveOn(const char* why);
  // Reads the socket monitor: handshake failures are logged (rate-limited; a refused
  // CURVE key otherwise only shows as silence), a dropped connection or a refused
  // connect is acted on.
  void DrainMonitor();
  void CloseSocket();
  void Lost(const char* why);

  zmq::context_t& ctx_;
  Options options_;
  std::vector<std::string> endpoints_;
  size_t current_ = 0;
  std::unique_ptr<zmq::socket_t> socket_;
  std::unique_ptr<zmq::socket_t> monitor_;  // PAIR fed by zmq_socket_monitor(socket_)
  net::LogLimiter handshake_log_{1, std::chrono::seconds(10)};
  net::LogLimiter unknown_log_{1, std::chrono::seconds(5)};
  std::string identity_;  // the same for the peer's whole life (the broker hands over)
  std::function<void(uint64_t)> on_connected_;
  std::function<void()> on_broker_lost_;
  Clock::time_point last_heard_;
  Clock::time_point last_served_{};
  Clock::time_point last_sent_;
  Clock::time_point last_heartbeat_;
  Clock::time_point connected_at_;
  // READY went out and no answer came yet: UNKNOWN_PEERs for what we sent before it
  // are expected and ignored (announcing again would make the broker count twice).
  bool awaiting_ack_ = false;
  Clock::time_point ready_sent_at_;
  uint64_t confirmed_ = 0;            // incarnation of the broker that accepted us
  uint32_t broker_features_ = 0;      // what the broker that accepted us takes (kFeature*)
  std::deque<BusMessage> unbatched_;  // the rest of a kBatch being returned item by item
  codec::BatchWriter queued_;         // Queue()d, not yet flushed
  bool move_pending_ = false;
};

// Makes `socket` a CURVE client with `keys` (no-op when CURVE is off). Call before
// connect().
void SetCurveClient(zmq::socket_t& socket, const CurveClientKeys& keys);

// Sends a multipart bus message on a socket (ROUTER when `identity` is not empty).
// Never blocks; returns false on EAGAIN/EHOSTUNREACH.
bool SendBus(zmq::socket_t& socket, std::string_view identity, codec::BusType type,
             std::string_view meta, std::string_view body);

}  // namespace imbus::bus
