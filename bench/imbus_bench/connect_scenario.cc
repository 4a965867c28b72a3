// `connect`: N connections opened, registered and logged in, then held with PINGs.
// Reports connect and login rates and, with --edge-pid, the edge's RSS per
// connection (bare TCP and logged in).
#include <cstdio>

#include "bench/imbus_bench/fleet.h"
#include "bench/imbus_bench/scenarios.h"

namespace imbus::bench {

int RunConnect(const BenchOptions& o, Report* report) {
  EventLoop loop;
  Fleet fleet(&loop, FleetOptionsFor(o, o.connections, "c"));
  const int64_t rss0 = RssKiB(o.edge_pid);
  const bool connected = fleet.ConnectAll(o.setup_timeout_s);
  const int64_t rss_connected = RssKiB(o.edge_pid);
  const bool logged_in = connected ? fleet.LoginAll(o.setup_timeout_s) : false;
  const int64_t rss_logged_in = RssKiB(o.edge_pid);

  // Hold: the connections stay open and PING; count what the server closes.
  Progress progress("hold");
  const int64_t hold_end = NowNs() + static_cast<int64_t>(o.duration_s * 1e9);
  FleetStats& s = fleet.stats();
  loop.RunUntil([] { return false; }, hold_end,
                [&] {
                  fleet.Tick();
                  progress.Maybe([&] {
                    return "open " + std::to_string(fleet.open_count()) + "  pings " +
                           std::to_string(s.pings) + "  closed by server " +
                           std::to_string(s.closed_later);
                  });
                },
                50);
  const int64_t rss_held = RssKiB(o.edge_pid);
  const size_t open_at_end = fleet.open_count();

  const double connect_s = Seconds(s.all_connected_ns - s.first_start_ns);
  const double login_s = Seconds(s.all_logged_in_ns - s.login_start_ns);
  report->Set("connections", static_cast<uint64_t>(o.connections));
  report->Set("connected", s.connected);
  report->Set("registered", s.registered);
  report->Set("logged_in", s.logged_in);
  report->Set("failed", s.failed);
  report->Set("connect_phase_s", connect_s, "s");
  report->Set("connect_rate", static_cast<double>(s.connected) / connect_s, "conn/s");
  report->Set("login_phase_s", login_s, "s");
  report->Set("login_rate", static_cast<double>(s.logged_in) / login_s,
              o.reuse_users ? "logins/s" : "register+login/s");
  report->Set("hold_s", o.duration_s, "s");
  report->Set("pings", s.pings);
  report->Set("ping_failures", s.ping_failures);
  report->Set("closed_during_hold", s.closed_later);
  report->Set("open_at_end", static_cast<uint64_t>(open_at_end));
  if (o.edge_pid > 0 && rss0 > 0) {
    report->Set("edge_rss_before_kib", rss0, "KiB");
    report->Set("edge_rss_connected_kib", rss_connected, "KiB");
    report->Set("edge_rss_logged_in_kib", rss_logged_in, "KiB");
    report->Set("edge_rss_after_hold_kib", rss_held, "KiB");
    if (s.connected > 0) {
      report->Set(
          "edge_bytes_per_conn_tcp",
          static_cast<double>(rss_connected - rss0) * 1024.0 / static_cast<double>(s.connected),
          "B");
    }
    if (s.logged_in > 0) {
      report->Set("edge_bytes_per_conn_logged_in",
                  static_cast<double>(rss_held - rss0) * 1024.0 / static_cast<double>(s.logged_in),
                  "B");
    }
  }
  if (!s.last_error.empty()) report->SetText("last_error", s.last_error);
  report->AddLatency("tcp_connect", s.connect_ns);
  report->AddLatency("register", s.register_ns);
  report->AddLatency("login", s.login_ns);
  report->AddLatency("ping", s.ping_ns);
  const bool ok = connected && logged_in && open_at_end == o.connections;
  return ok ? 0 : 1;
}

}  // namespace imbus::bench
