// Helpers shared by the scenarios: fleet options, the keepalive interval, RSS, CPU.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "bench/imbus_bench/bench_conn.h"
#include "bench/imbus_bench/fleet.h"
#include "bench/imbus_bench/scenarios.h"
#include "codec/commands.h"
#include "net/process_stats.h"

namespace imbus::bench {

FleetOptions FleetOptionsFor(const BenchOptions& o, size_t count, const std::string& tag) {
  FleetOptions f;
  f.server = o.server_addr;
  f.count = count;
  f.parallel = o.parallel;
  f.source_ips = o.source_ips;
  f.name_prefix = "bench_" + o.run + "_" + tag;
  f.reuse_users = o.reuse_users;
  f.ping_interval_s = PingIntervalS(o);
  f.tls = o.tls_ctx.get();
  f.ws = o.ws;
  return f;
}

int PingIntervalS(const BenchOptions& o) {
  if (o.ping_interval_s > 0) return o.ping_interval_s;
  static int cached = 0;
  if (cached > 0) return cached;
  EventLoop loop;
  BenchConn c(&loop, 0);
  std::string error;
  int idle_s = 30;
  bool done = false;
  if (o.ws) c.UseWebSocket();
  if (c.Start(o.server_addr, sockaddr_in{}, &error, o.tls_ctx.get())) {
    codec::MapWriter w(2);
    w.Key("client").Str("imbus-bench").Key("version").Uint(codec::kProtocolVersion);
    c.Request(codec::ToWire(codec::Service::kSys), codec::sys::kHello, w.Finish(),
              [&](int code, const codec::Body& body) {
                done = true;
                if (code != 0) return;
                try {
                  idle_s = static_cast<int>(body.GetUint("idle_timeout_s").value_or(30));
                } catch (const codec::BadField&) {
                }
              });
    loop.RunUntil([&] { return done || c.state() == BenchConn::State::kClosed; },
                  NowNs() + 5'000'000'000, nullptr);
  }
  cached = std::max(1, idle_s / 3);
  return cached;
}

int64_t RssKiB(int pid) {
  if (pid <= 0) return -1;
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

int64_t CpuUs(int pid) { return net::ProcessCpuUs(pid); }

double Seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

}  // namespace imbus::bench
