// Internal to tests. Small helpers for integration tests: connected clients (also
// from another loopback address), unique names, the broker's STATS.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "bus/peer.h"
#include "bus/stats_query.h"
#include "client/client.h"
#include "client/connection.h"
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

// A client on edge `edge` whose connection comes from `source` (127.0.0.x): another
// "machine" as far as the per-address limits go.
inline client::Client From(Stack& stack, const std::string& source, size_t edge = 0,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  ::inet_pton(AF_INET, source.c_str(), &local.sin_addr);
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(static_cast<uint16_t>(stack.edge_port(edge)));
  ::inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof(local)) != 0 ||
      ::connect(fd, reinterpret_cast<const sockaddr*>(&remote), sizeof(remote)) != 0) {
    ADD_FAILURE() << "connect from " << source << ": " << std::strerror(errno);
    ::close(fd);
    return client::Client(timeout);
  }
  return client::Client(client::Connection::FromFd(net::UniqueFd(fd)), timeout);
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
