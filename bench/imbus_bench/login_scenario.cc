// `login`: closed-loop AUTH/LOGIN throughput. `concurrency` connections, each
// logged in as its own user, each sending the next LOGIN as soon as the previous
// answer arrives (a LOGIN on a logged-in connection re-binds the same session).
#include <cstdio>

#include "bench/imbus_bench/fleet.h"
#include "bench/imbus_bench/scenarios.h"
#include "codec/commands.h"

namespace imbus::bench {

int RunLogin(const BenchOptions& o, Report* report) {
  EventLoop loop;
  Fleet fleet(&loop, FleetOptionsFor(o, o.concurrency, "l"));
  if (!fleet.Establish(o.setup_timeout_s)) {
    report->SetText("error", "setup failed: " + fleet.stats().last_error);
    return 1;
  }
  Histogram latency;
  uint64_t ok = 0, errors = 0;
  bool running = true;
  std::function<void(size_t)> next = [&](size_t i) {
    BenchConn& c = fleet.conn(i);
    if (!running || c.state() != BenchConn::State::kOpen) return;
    codec::MapWriter w(2);
    w.Key("uid").Uint(c.uid).Key("password").Str(fleet.options().password);
    const int64_t start = NowNs();
    c.Request(codec::ToWire(codec::Service::kAuth), codec::auth::kLogin, w.Finish(),
              [&, i, start](int code, const codec::Body&) {
                if (code == kConnLost) return;
                if (code == 0) {
                  ++ok;
                  latency.Record(NowNs() - start);
                } else {
                  ++errors;
                }
                next(i);
              });
  };
  for (size_t i = 0; i < fleet.size(); ++i) next(i);
  Progress progress("login");
  uint64_t last = 0;
  const int64_t start = NowNs();
  loop.RunUntil([] { return false; }, start + static_cast<int64_t>(o.duration_s * 1e9),
                [&] {
                  progress.Maybe([&] {
                    const std::string line = "logins " + std::to_string(ok) + " (+" +
                                             std::to_string(ok - last) + "/s)  errors " +
                                             std::to_string(errors);
                    last = ok;
                    return line;
                  });
                });
  const double elapsed = Seconds(NowNs() - start);
  running = false;
  // Let the answers in flight come back so the connections close cleanly.
  loop.RunUntil(
      [&] {
        for (size_t i = 0; i < fleet.size(); ++i) {
          if (fleet.conn(i).pending() > 0 && fleet.conn(i).state() == BenchConn::State::kOpen)
            return false;
        }
        return true;
      },
      NowNs() + 5'000'000'000, nullptr);
  report->Set("concurrency", static_cast<uint64_t>(o.concurrency));
  report->Set("duration_s", elapsed, "s");
  report->Set("logins", ok);
  report->Set("errors", errors);
  report->Set("login_rate", static_cast<double>(ok) / elapsed, "logins/s");
  report->AddLatency("login", latency);
  return errors == 0 && ok > 0 ? 0 : 1;
}

}  // namespace imbus::bench
