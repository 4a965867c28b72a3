// Public. EdgeServer: an edge process's worth of event loops. Binds one listening
// socket per thread on the same port (SO_REUSEPORT), then runs one EdgeLoop per
// thread, each with its own BusPeer to the broker. Used by imbus-edge's main and by
// tests that run an edge in-process.
//
// Start/Stop/accessors are called from one controlling thread; Stats() from any.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "edge/edge_stats.h"
#include "edge/http.h"
#include "edge/file_budget.h"
#include "edge/ip_limits.h"
#include "edge/listener.h"
#include "edge/options.h"
#include "edge/tls_context.h"

namespace imbus::edge {

class EdgeServer {
 public:
  // Validates the options, loads the TLS certificate and key if any, binds every
  // listening socket and resolves the name and advertised address. Throws std::runtime_error (a
  // startup error) on failure.
  explicit EdgeServer(EdgeOptions options);
  ~EdgeServer();  // Stop()
  EdgeServer(const EdgeServer&) = delete;
  EdgeServer& operator=(const EdgeServer&) = delete;

  // Starts the loop threads. Logs a line ending in "listening on HOST:PORT".
  void Start();
  // Asks every loop to stop and joins them (within ~100 ms plus closing time).
  void Stop();

  uint16_t port() const { return options_.listen_port; }          // the actual port
  uint16_t tls_port() const { return options_.tls_listen_port; }  // 0: no TLS listener
  uint16_t ws_port() const { return options_.ws_listen_port; }    // 0: no WebSocket listener
  uint16_t wss_port() const { return options_.wss_listen_port; }  // 0: no wss:// listener
  // The options as resolved (name, advertise address, actual port).
  const EdgeOptions& options() const { return options_; }
  EdgeCounters Stats() const;

 private:
  EdgeOptions options_;
  zmq::context_t ctx_;                   // before the threads: outlives every BusPeer
  IpLimits ip_limits_;                   // shared by the loops (thread-safe)
  FileBudget file_budget_;               // shared by the loops (thread-safe)
  std::vector<Listener> listeners_;      // handed to the loops by Start()
  std::unique_ptr<TlsContext> tls_;      // null without --tls-listen; outlives the loops
  std::vector<Listener> tls_listeners_;  // one per thread when tls_ is set
  std::vector<Listener> ws_listeners_;   // one per thread with --ws-listen
  std::vector<Listener> wss_listeners_;  // one per thread with --wss-listen
  std::unique_ptr<StaticFiles> web_;     // the web app (--web-root); null: none
  std::vector<std::unique_ptr<EdgeStats>> stats_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

}  // namespace imbus::edge
