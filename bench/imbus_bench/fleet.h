// Internal to imbus-bench. A fleet of logged-in client connections: opens `count`
// connections (at most `parallel` being set up at once), spreading their source
// addresses over 127.0.0.2..127.0.0.(1+source_ips) so 100k connections do not run
// out of ephemeral ports, registers and logs each user in, then keeps every
// connection alive with SYS/PING at the server's idle_timeout_s / 3.
// Users are named <prefix><i>; with reuse_users a user that exists is just logged
// in (REGISTER only when LOGIN says UNAUTHENTICATED).
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <functional>
#include <queue>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bench/imbus_bench/bench_conn.h"
#include "bench/imbus_bench/event_loop.h"
#include "bench/imbus_bench/histogram.h"

namespace imbus::bench {

struct FleetOptions {
  sockaddr_in server{};
  size_t count = 0;
  size_t parallel = 256;
  int source_ips = 64;
  std::string name_prefix;
  std::string password = "bench-password";
  bool reuse_users = false;
  int ping_interval_s = 10;
  const client::TlsClientContext* tls = nullptr;  // non-null: TLS (owned by BenchOptions)
  bool ws = false;  // WebSocket (the edge's --ws-listen port), one frame per message
};

struct FleetStats {
  uint64_t connected = 0;
  uint64_t registered = 0;
  uint64_t logged_in = 0;
  uint64_t connect_failed = 0;  // TCP connect failed
  uint64_t failed = 0;          // connect or login failed during setup
  uint64_t closed_later = 0;    // closed after login (kicked, idle timeout, server gone)
  uint64_t busy_retries = 0;    // REGISTER/LOGIN answered RATE_LIMITED and sent again later
  uint64_t pings = 0;
  uint64_t ping_failures = 0;
  Histogram connect_ns;   // TCP connect
  Histogram register_ns;  // AUTH/REGISTER round trip
  Histogram login_ns;     // AUTH/LOGIN round trip
  Histogram ping_ns;
  int64_t first_start_ns = 0;
  int64_t all_connected_ns = 0;  // end of the connect phase
  int64_t login_start_ns = 0;
  int64_t all_logged_in_ns = 0;  // end of the login phase
  std::string last_error;
};

class Fleet {
 public:
  Fleet(EventLoop* loop, FleetOptions options);
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // Phase 1: opens every connection (TCP only). Phase 2: registers/logs in every
  // open one. Each returns when all are done or failed, or after `timeout_s`, and
  // prints progress. Establish() runs both; true when all `count` are logged in.
  bool ConnectAll(int timeout_s);
  bool LoginAll(int timeout_s);
  bool Establish(int timeout_s) { return ConnectAll(timeout_s) && LoginAll(timeout_s); }
  // Keeps connections alive; call from the scenario's tick.
  void Tick();

  BenchConn& conn(size_t i) { return *conns_[i]; }
  size_t size() const { return conns_.size(); }
  size_t open_count() const;
  FleetStats& stats() { return stats_; }
  const FleetOptions& options() const { return options_; }
  // One extra connection, not logged in (for the login scenario's own loop).
  std::unique_ptr<BenchConn> NewConn(size_t index, std::string* error);
  std::string Name(size_t i) const { return options_.name_prefix + std::to_string(i); }

 private:
  void StartNextConnect();
  void StartNextLogin();
  void OnOpen(size_t i);
  void RunPhase(const char* name, size_t target, const size_t* done, int timeout_s);
  void Login(size_t i, bool register_on_failure);
  void Register(size_t i);
  void SetupDone(size_t i, bool ok, const std::string& why);
  // REGISTER or LOGIN answered RATE_LIMITED (the server's hashing queue is full):
  // the same again after the answer's retry_ms.
  void RetryLater(size_t i, bool register_user, const codec::Body& body);
  sockaddr_in SourceFor(size_t i) const;

  EventLoop* loop_;
  FleetOptions options_;
  FleetStats stats_;
  std::vector<std::unique_ptr<BenchConn>> conns_;
  enum Phase : uint8_t { kNotStarted, kConnecting, kOpen, kSettingUp, kLoggedIn, kFailed };
  std::vector<uint8_t> phase_;
  size_t next_to_start_ = 0;
  size_t in_flight_ = 0;
  size_t connect_done_ = 0;
  size_t login_done_ = 0;
  using Due = std::pair<int64_t, size_t>;  // (due time, conn)
  std::priority_queue<Due, std::vector<Due>, std::greater<>> ping_due_;
  struct Retry {
    int64_t at;
    size_t conn;
    bool register_user;
    bool operator>(const Retry& o) const { return at > o.at; }
  };
  std::priority_queue<Retry, std::vector<Retry>, std::greater<>> retry_due_;
};

// Parses HOST:PORT (IPv4 literal or "localhost"); false with *error otherwise.
bool ParseServer(const std::string& text, sockaddr_in* out, std::string* error);

}  // namespace imbus::bench
