// Internal to the broker. CurveAuthenticator: the ZAP handler (ZeroMQ RFC 27) that
// lets only allowed CURVE public keys onto the broker's ROUTER, plus a monitor of
// that ROUTER which notices peers failing the handshake before ZAP is asked (no
// CURVE at all, or encrypting to the wrong server key). Without a ZAP handler libzmq
// would accept any CURVE client, so the broker makes this before it binds.
// Every refusal is counted and logged, rate-limited (a refused peer retries every
// second), with the peer's address and the first characters of its key.
//
// Threads: the broker loop's; its two sockets are polled there (zap(), monitor()).
// ZAP is per context: one CURVE broker per zmq::context_t (binding twice throws).
// Not copyable or movable (owns sockets bound to fixed inproc names).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include <zmq.hpp>

#include "net/log_limiter.h"

namespace imbus::broker {

class CurveAuthenticator {
 public:
  // `allowed` holds Z85 public keys already checked (bus::ParseCurveKey). Binds
  // inproc://zeromq.zap.01; throws zmq::error_t when that fails.
  CurveAuthenticator(zmq::context_t& ctx, const std::vector<std::string>& allowed);
  CurveAuthenticator(const CurveAuthenticator&) = delete;
  CurveAuthenticator& operator=(const CurveAuthenticator&) = delete;

  // Starts watching `router` for failed handshakes (after it is bound).
  void Watch(zmq::socket_t& router);

  zmq::socket_t& zap() { return zap_; }
  zmq::socket_t& monitor() { return monitor_; }

  // Answer every pending ZAP request / read every pending monitor event.
  void HandleZap();
  void HandleMonitor();

  uint64_t refused() const { return refused_; }  // ZAP denials + failed handshakes
  uint64_t accepted() const { return accepted_; }

 private:
  void LogRefusal(const std::string& what);

  zmq::socket_t zap_;
  zmq::socket_t monitor_;
  std::unordered_set<std::string> allowed_;  // 32-byte binary keys
  net::LogLimiter log_limiter_{5, std::chrono::seconds(10)};
  uint64_t refused_ = 0;
  uint64_t accepted_ = 0;
};

}  // namespace imbus::broker
