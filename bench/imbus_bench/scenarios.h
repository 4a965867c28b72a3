// Internal to imbus-bench. The scenarios and the options they share. Each Run*
// function drives one EventLoop on the calling thread, fills `report` and returns
// the process exit code: 0 = ran and verified, 1 = ran but something failed
// (setup incomplete, messages lost or duplicated), 2 = could not run.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bench/imbus_bench/report.h"
#include "client/tls.h"

namespace imbus::bench {

struct BenchOptions {
  std::string server = "127.0.0.1:7000";
  sockaddr_in server_addr{};
  size_t connections = 1000;  // connect
  size_t concurrency = 16;    // login
  size_t users = 100;         // chat
  size_t members = 50;        // group
  size_t senders = 4;         // group: members that post
  double rate = 0;            // messages/s in total; 0 = closed loop with `window`
  size_t window = 1;          // closed loop: messages in flight per sender
  size_t text_bytes = 32;
  size_t contacts = 0;        // chat: each user writes to this many fixed others; 0 = anyone
  double deadline_ms = 1000;  // chat/group: acks within this count as "in deadline"
  // chat/group: server processes (name, pid) whose CPU time (utime+stime) is read at
  // the start and the end of the send phase and reported per acked message.
  std::vector<std::pair<std::string, int>> cpu_pids;
  double duration_s = 10;
  double drain_s = 5;  // after sending stops: wait this long for stragglers
  int setup_timeout_s = 600;
  size_t parallel = 256;    // connections being set up at once
  int source_ips = 64;      // 127.0.0.2 .. 127.0.0.(1+N)
  int ping_interval_s = 0;  // 0: idle_timeout_s / 3 from SYS/HELLO
  int edge_pid = 0;
  std::string run;  // user names are bench_<run>_<i>
  bool reuse_users = false;
  uint64_t seed = 1;
  bool friends = false;   // steady: each user befriends the next (a ring)
  size_t leavers = 0;     // steady: connections closed on SIGUSR1
  bool tls = false;       // connect to the edge's TLS listener
  bool ws = false;        // connect over WebSocket (--server is the edge's --ws-listen port)
  std::string ca_file;    // --tls: trusted CAs (PEM); empty: the system store
  bool insecure = false;  // --tls: no certificate check (throwaway certificates)
  std::shared_ptr<const client::TlsClientContext> tls_ctx;  // made from the three above
  // file (issue 19): the file's size, DOWNLOADs in flight, bytes asked per DOWNLOAD,
  // and --loop: upload one file after another for duration_s (no download).
  double file_mb = 16;
  size_t download_window = 8;
  size_t chunk_bytes = 32768;
  bool loop = false;
};

int RunConnect(const BenchOptions& o, Report* report);
int RunLogin(const BenchOptions& o, Report* report);
int RunChat(const BenchOptions& o, Report* report);
int RunGroup(const BenchOptions& o, Report* report);
int RunSteady(const BenchOptions& o, Report* report);
int RunFile(const BenchOptions& o, Report* report);

// Shared by the scenarios (scenario_util.cc).
struct FleetOptions;
FleetOptions FleetOptionsFor(const BenchOptions& o, size_t count, const std::string& tag);
// Asks the server for idle_timeout_s (SYS/HELLO) and returns a third of it (>= 1);
// `o.ping_interval_s` when set.
int PingIntervalS(const BenchOptions& o);
// VmRSS of `pid` in KiB, or -1.
int64_t RssKiB(int pid);
// CPU time (utime+stime, all threads) of `pid` in microseconds, or -1.
int64_t CpuUs(int pid);
double Seconds(int64_t ns);

}  // namespace imbus::bench
