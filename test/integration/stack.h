// Internal to tests. A whole imbus stack from the built binaries on 127.0.0.1 (the
// broker and the edges bind port 0 and report the port they got; only a broker
// pair's ports are probed), against the tests' MariaDB (a database of its own per Stack):
// broker, edges and actor processes that a test can add, kill and restart.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bus/curve.h"
#include "test/support/process.h"

namespace imbus::testing {

struct DbConfig;  // test/support/mariadb.h

struct StackOptions {
  int idle_timeout_s = 30;
  int request_timeout_ms = 15000;
  int queue_timeout_ms = 3000;
  int heartbeat_ms = 1000;
  int edge_threads = 1;
  // The actors' MariaDB (e.g. a MariaDbServer a test stops and starts); must outlive
  // the Stack. nullptr: SharedMariaDb().
  const DbConfig* db = nullptr;
  // Extra flags for every broker / edge started (e.g. rate limits).
  std::vector<std::string> broker_args{};
  std::vector<std::string> edge_args{};
  std::vector<std::string> actor_args{};  // likewise for every actor
  // CURVE on the bus: the Stack makes a broker key pair (secret in a file), one pair
  // its edges and actors share (secret passed in IMBUS_CURVE_SECRET) and one for
  // BrokerStats; the broker allows the last two.
  bool curve = false;
  // Two brokers as a primary/backup pair (--peer): StartBroker(0) is the primary,
  // StartBroker(1) the backup; edges and actors are given both.
  bool broker_pair = false;
};

class Stack {
 public:
  explicit Stack(StackOptions options = {});
  ~Stack();
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  // Edges started after this also get a TLS listener (--tls-listen) with these PEM
  // files; the port is edge_tls_port(index). (Not in StackOptions: tests build that
  // one with aggregate initialisers.)
  void EnableTls(std::string cert_file, std::string key_file) {
    tls_cert_file_ = std::move(cert_file);
    tls_key_file_ = std::move(key_file);
  }

  // Starts broker 0 (with broker_pair, 1 is the backup); again after a kill, on the
  // same endpoints.
  void StartBroker(size_t i = 0);
  // Starts an edge and returns its index; its port is edge_port(index).
  // `curve`: the peer's CURVE keys instead of the Stack's (an empty one: no CURVE).
  size_t StartEdge(const bus::CurveClientKeys* curve = nullptr);
  // Kills edge `i` (SIGKILL) and starts it again on the same port, as an operator
  // restarting a crashed edge would: clients reconnect to the address they know.
  void RestartEdge(size_t i);
  // Starts an actor process serving `services` (comma-separated); returns its index.
  // The password hash cost is the lowest unless `pwhash_mem` says otherwise;
  // kDefaultPwhashCost gives the actor's own default (the production cost).
  static constexpr int64_t kDefaultPwhashCost = 0;
  size_t StartActor(const std::string& services = "auth", int threads = 1,
                    int64_t pwhash_mem = 8192, const bus::CurveClientKeys* curve = nullptr);
  // Waits until the broker has seen `count` more workers join since `from`.
  bool WaitWorkersJoined(size_t from_log_offset, int count, std::chrono::milliseconds timeout);

  Process& broker(size_t i = 0) { return i == 0 ? broker_ : backup_; }
  Process& edge(size_t i) { return *edges_.at(i); }
  Process& actor(size_t i) { return *actors_.at(i); }
  int edge_port(size_t i = 0) const { return edge_ports_.at(i); }
  int edge_tls_port(size_t i = 0) const { return edge_tls_ports_.at(i); }  // 0: none
  // Broker i's own endpoint (STATS); peers_endpoint() is what edges and actors get.
  const std::string& bus_endpoint(size_t i = 0) const {
    return i == 0 ? bus_endpoint_ : backup_endpoint_;
  }
  std::string peers_endpoint() const {
    return options_.broker_pair ? bus_endpoint_ + "," + backup_endpoint_ : bus_endpoint_;
  }
  const std::string& database() const { return database_; }
  // With options.curve: the keys edges and actors use, and the ones BrokerStats uses
  // (both allowed). Empty (CURVE off) otherwise.
  const bus::CurveClientKeys& peer_curve() const { return peer_curve_; }
  const bus::CurveClientKeys& control_curve() const { return control_curve_; }

  // All logs, for failure messages.
  std::string Logs();

 private:
  void MakeCurveKeys();
  // Flags and environment that give a peer process `curve` (nothing when it is off).
  void AddCurveArgs(const bus::CurveClientKeys& curve, std::vector<std::string>* args,
                    std::map<std::string, std::string>* env) const;

  StackOptions options_;
  std::string key_dir_;  // with options.curve: broker.key, allow (removed at the end)
  bus::CurveClientKeys peer_curve_;
  bus::CurveClientKeys control_curve_;
  std::string bus_endpoint_;
  std::string backup_endpoint_;     // broker_pair only
  std::string state_endpoints_[2];  // broker_pair only: --state-bind of each
  std::string database_;
  std::unique_ptr<Process> LaunchEdge(size_t index, int port, const bus::CurveClientKeys& curve);

  Process broker_;
  Process backup_;
  std::vector<std::unique_ptr<Process>> edges_;
  std::vector<int> edge_ports_;
  std::vector<int> edge_tls_ports_;
  std::string tls_cert_file_;
  std::string tls_key_file_;
  std::vector<std::unique_ptr<Process>> actors_;
};

}  // namespace imbus::testing
