// `chat`: N online users, each writing direct messages to random others, or with
// --contacts K to K fixed others each (existing conversations: the common case).
#include <numeric>

#include "bench/imbus_bench/fleet.h"
#include "bench/imbus_bench/message_load.h"
#include "bench/imbus_bench/scenarios.h"

namespace imbus::bench {

int RunChat(const BenchOptions& o, Report* report) {
  if (o.users < 2) {
    report->SetText("error", "chat needs --users >= 2");
    return 2;
  }
  EventLoop loop;
  Fleet fleet(&loop, FleetOptionsFor(o, o.users, "m"));
  if (!fleet.Establish(o.setup_timeout_s)) {
    report->SetText("error", "setup failed: " + fleet.stats().last_error);
    report->Set("logged_in", fleet.stats().logged_in);
    return 1;
  }
  report->Set("users", static_cast<uint64_t>(o.users));
  std::vector<size_t> senders(o.users);
  std::iota(senders.begin(), senders.end(), size_t{0});
  MessageLoadOptions mo;
  mo.rate = o.rate;
  mo.window = o.window;
  mo.text_bytes = o.text_bytes;
  mo.duration_s = o.duration_s;
  mo.drain_s = o.drain_s;
  mo.seed = o.seed;
  mo.contacts = o.contacts;
  mo.deadline_ms = o.deadline_ms;
  mo.cpu_pids = o.cpu_pids;
  MessageLoad load(&fleet, &loop, mo, std::move(senders));
  load.Run();
  return load.Fill(report) ? 0 : 1;
}

}  // namespace imbus::bench
