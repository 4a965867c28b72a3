// Public. EdgeStats: counters of one edge thread. Written by that thread only
// (relaxed atomics), read by anyone (EdgeServer::Stats sums them).
#pragma once

#include <atomic>
#include <cstdint>

namespace imbus::edge {

// The transports a client connection arrives on, as metric label values: index
// (websocket ? 2 : 0) + (tls ? 1 : 0).
inline constexpr const char* kTransportNames[4] = {"tcp", "tls", "ws", "wss"};
inline constexpr int TransportIndex(bool tls, bool websocket) {
  return (websocket ? 2 : 0) + (tls ? 1 : 0);
}

struct EdgeStats {
  std::atomic<uint64_t> connections{0};  // open now
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> closed{0};
  std::atomic<uint64_t> closed_idle{0};
  std::atomic<uint64_t> closed_slow_reader{0};
  std::atomic<uint64_t> closed_broken{0};  // broken stream (SYS/ERROR sent)
  std::atomic<uint64_t> kicked{0};
  std::atomic<uint64_t> requests{0};           // whole frames received
  std::atomic<uint64_t> forwarded{0};          // sent to the broker
  std::atomic<uint64_t> timeouts{0};           // answered UNAVAILABLE at the deadline
  std::atomic<uint64_t> pushes{0};             // push frames written
  std::atomic<uint64_t> peak_output{0};        // most output ever pending on one connection
  std::atomic<uint64_t> rate_limited{0};       // frames over the per-connection rate
  std::atomic<uint64_t> rate_limited_send{0};  // MSG/SEND over the per-connection rate
  std::atomic<uint64_t> login_backoff{0};      // LOGIN/RESUME refused: the address backs off
  std::atomic<uint64_t> refused_ip_cap{0};     // connections over the per-address cap
  std::atomic<uint64_t> busy{0};        // refused at the edge: the broker said the service is busy
  std::atomic<uint64_t> frames_out{0};  // frames written (responses and pushes)
  std::atomic<uint64_t> bytes_in{0};    // bytes read from clients (after TLS)
  std::atomic<uint64_t> bytes_out{0};   // bytes queued to clients (before TLS)
  // By transport (kTransportNames): open now, and accepted since start.
  std::atomic<uint64_t> open_by_transport[4] = {};
  std::atomic<uint64_t> accepted_by_transport[4] = {};

  static void Add(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.fetch_add(n, std::memory_order_relaxed);
  }
};

// A plain copy of the counters (summed over threads).
struct EdgeCounters {
  uint64_t connections = 0, accepted = 0, closed = 0, closed_idle = 0, closed_slow_reader = 0,
           closed_broken = 0, kicked = 0, requests = 0, forwarded = 0, timeouts = 0, pushes = 0,
           peak_output = 0, rate_limited = 0, rate_limited_send = 0, login_backoff = 0,
           refused_ip_cap = 0, busy = 0, frames_out = 0, bytes_in = 0, bytes_out = 0;
  uint64_t open_by_transport[4] = {}, accepted_by_transport[4] = {};
};

}  // namespace imbus::edge
