// Internal to edge/. IpLimits: what the edge limits per client IP address, shared by
// all of an edge's event loops (SO_REUSEPORT spreads one address's connections over
// them): the number of open connections, and the login backoff (LoginBackoff).
//
// Thread-safe: one mutex; it is taken on accept, close and LOGIN/RESUME only, never
// on ordinary requests. Owned by EdgeServer, which outlives the loops. Not copyable.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "edge/login_backoff.h"

namespace imbus::edge {

class IpLimits {
 public:
  using Clock = std::chrono::steady_clock;

  // `max_conns_per_ip` 0: no cap.
  IpLimits(uint32_t max_conns_per_ip, LoginBackoffOptions login);
  IpLimits(const IpLimits&) = delete;
  IpLimits& operator=(const IpLimits&) = delete;

  bool conn_cap_enabled() const { return max_conns_per_ip_ > 0; }
  uint32_t max_conns_per_ip() const { return max_conns_per_ip_; }
  // Counts a new connection from `ip`; false (nothing counted) when `ip` already
  // has max_conns_per_ip open. Each true is matched by one ReleaseConnection.
  bool AcquireConnection(const std::string& ip);
  void ReleaseConnection(const std::string& ip);
  size_t open_connections(const std::string& ip);

  bool login_backoff_enabled() const { return login_enabled_; }
  // See LoginBackoff.
  int64_t AdmitLogin(const std::string& ip, Clock::time_point now);
  void LoginFailed(const std::string& ip, const std::string& target, Clock::time_point now);
  void LoginSucceeded(const std::string& ip, const std::vector<std::string>& targets);

 private:
  const uint32_t max_conns_per_ip_;
  const bool login_enabled_;
  std::mutex mu_;
  std::unordered_map<std::string, uint32_t> open_;  // guarded by mu_; no zero entries
  LoginBackoff login_;                              // guarded by mu_
};

}  // namespace imbus::edge
