// Internal to tests. Small helpers for integration tests: connected clients,
// unique names, the broker's STATS.
#pragma once

#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "bus/peer.h"
#include "bus/stats_query.h"
#include "client/client.h"
#include "codec/bus.h"
#include "test/integration/stack.h"

namespace imbus::testing {

inline client::Client Connected(Stack& stack, size_t edge = 0,
                                std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  client::Client c(timeout);
  std::string error;
  if (!c.Connect("127.0.0.1", static_cast<uint16_t>(stack.edge_port(edge)), &error)) {
    ADD_FAILURE() << "connect to edge " << edge << ": " << error;
  }
  return c;
}

inline std::string UniqueName(const std::string& prefix) {
  static int n = 0;
  return prefix + std::to_string(::getpid() % 10000) + "_" + std::to_string(n++);
}

// Asks the broker for its STATS over a raw DEALER socket.
inline bool BrokerStats(const Stack& stack, codec::StatsMeta* out) {
  std::string error;
  return bus::QueryStats(stack.bus_endpoint(), std::chrono::seconds(5), out, &error,
                         &stack.control_curve());
}

// Waits until the broker knows `n` workers serving `service`.
inline bool WaitWorkers(const Stack& stack, const std::string& service, size_t n,
                        std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    codec::StatsMeta stats;
    if (BrokerStats(stack, &stats)) {
      size_t count = 0;
      for (const auto& w : stats.workers) {
        for (const auto& s : w.services) count += (s == service) ? 1 : 0;
      }
      if (count >= n) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace imbus::testing
