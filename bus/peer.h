// Public. BusPeer: one DEALER connection from an edge thread or an actor worker to
// the broker, with the application heartbeats and the reconnect logic of the
// Paranoid Pirate pattern (libzmq 4.3.4 has no ROUTER_NOTIFY).
//
// Not thread-safe: a BusPeer and its socket belong to the thread that made it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <zmq.hpp>

#include "bus/curve.h"
#include "bus/log_limiter.h"
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
    std::string endpoint;          // tcp://127.0.0.1:5555
    codec::Ready ready;            // sent on every (re)connect
    int heartbeat_ms = 1000;       // our heartbeat interval
    int liveness = 3;              // broker dead after this many silent intervals
    std::string identity_prefix;   // for logs and broker stats: "edge-a/0", "auth"
    CurveClientKeys curve;         // empty: CURVE off (plain ZMTP)
  };

  BusPeer(zmq::context_t& ctx, Options options);
  ~BusPeer();
  BusPeer(const BusPeer&) = delete;
  BusPeer& operator=(const BusPeer&) = delete;

  // Called after READY went out on a new connection (first connect, reconnect, or a
  // broker that forgot us), so the owner can re-announce its state (edges re-bind
  // their logged-in connections).
  void set_on_connected(std::function<void()> f) { on_connected_ = std::move(f); }

  // The ZMQ_FD of the current socket, for epoll. Changes after a reconnect: compare
  // with the previous value after Tick().
  int fd() const;

  // Queues a message to the broker without blocking. False when it could not be
  // queued (HWM reached or no connection): the caller decides (answer UNAVAILABLE).
  bool Send(codec::BusType type, std::string_view meta, std::string_view body = {});

  // Takes one message, if any, without blocking. Heartbeats and kUnknownPeer are
  // handled here and not returned.
  bool TryRecv(BusMessage* out);

  // Waits up to `timeout_ms` for input (actors' blocking loop; edges use fd()).
  bool WaitReadable(int timeout_ms);

  // Call at least every heartbeat interval: sends our heartbeat (with `load`),
  // declares the broker dead after `liveness` silent intervals and reconnects.
  void Tick(uint32_t load);

  const std::string& identity() const { return identity_; }
  bool broker_alive() const;

 private:
  void Connect();
  void SendReady();
  // Reads the socket monitor's handshake events and logs failures (rate-limited):
  // a refused CURVE key or a security mismatch otherwise only shows as silence.
  void DrainMonitor();
  void CloseSocket();

  zmq::context_t& ctx_;
  Options options_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::unique_ptr<zmq::socket_t> monitor_;  // PAIR fed by zmq_socket_monitor(socket_)
  LogLimiter handshake_log_{1, std::chrono::seconds(10)};
  std::string identity_;
  std::function<void()> on_connected_;
  std::chrono::steady_clock::time_point last_heard_;
  std::chrono::steady_clock::time_point last_sent_;
  std::chrono::steady_clock::time_point last_heartbeat_;
  uint64_t generation_ = 0;
};

// Makes `socket` a CURVE client with `keys` (no-op when CURVE is off). Call before
// connect().
void SetCurveClient(zmq::socket_t& socket, const CurveClientKeys& keys);

// Sends a multipart bus message on a socket (ROUTER when `identity` is not empty).
// Never blocks; returns false on EAGAIN/EHOSTUNREACH.
bool SendBus(zmq::socket_t& socket, std::string_view identity, codec::BusType type,
             std::string_view meta, std::string_view body);

}  // namespace imbus::bus
