// `group`: fan-out. M members join one new group (DIRECTORY/CREATE_GROUP by the
// first member, JOIN_GROUP by the others); `senders` members post to it and every
// other member must receive each message exactly once.
#include <numeric>

#include "bench/imbus_bench/fleet.h"
#include "bench/imbus_bench/message_load.h"
#include "bench/imbus_bench/scenarios.h"
#include "codec/commands.h"

namespace imbus::bench {

namespace {
const uint16_t kDirectory = codec::ToWire(codec::Service::kDirectory);
}  // namespace

int RunGroup(const BenchOptions& o, Report* report) {
  if (o.members < 2 || o.senders < 1) {
    report->SetText("error", "group needs --members >= 2 and --senders >= 1");
    return 2;
  }
  EventLoop loop;
  Fleet fleet(&loop, FleetOptionsFor(o, o.members, "g"));
  if (!fleet.Establish(o.setup_timeout_s)) {
    report->SetText("error", "setup failed: " + fleet.stats().last_error);
    return 1;
  }
  // The group: created fresh by member 0, joined by everyone else.
  uint64_t gid = 0;
  int create_code = -2;
  codec::MapWriter w(1);
  w.Key("name").Str("bench_" + o.run + "_" + std::to_string(NowNs() % 1'000'000'000));
  fleet.conn(0).Request(kDirectory, codec::directory::kCreateGroup, w.Finish(),
                        [&](int code, const codec::Body& body) {
                          create_code = code;
                          if (code == 0) gid = body.GetUint("gid").value_or(0);
                        });
  loop.RunUntil([&] { return create_code != -2; }, NowNs() + 15'000'000'000, nullptr);
  if (gid == 0) {
    report->SetText("error", std::string("CREATE_GROUP failed: ") +
                                 (create_code >= 0 ? codec::CodeName(create_code) : "no answer"));
    return 1;
  }
  size_t joined = 1, join_answers = 0;
  std::string join_error;
  for (size_t i = 1; i < fleet.size(); ++i) {
    codec::MapWriter j(1);
    j.Key("gid").Uint(gid);
    fleet.conn(i).Request(kDirectory, codec::directory::kJoinGroup, j.Finish(),
                          [&](int code, const codec::Body&) {
                            ++join_answers;
                            if (code == 0) {
                              ++joined;
                            } else {
                              join_error = code >= 0 ? codec::CodeName(code) : "connection lost";
                            }
                          });
  }
  loop.RunUntil([&] { return join_answers + 1 >= fleet.size(); }, NowNs() + 60'000'000'000,
                [&] { fleet.Tick(); });
  report->Set("members", static_cast<uint64_t>(o.members));
  report->Set("gid", gid);
  report->Set("joined", static_cast<uint64_t>(joined));
  if (joined != fleet.size()) {
    report->SetText("error", "JOIN_GROUP failed: " + join_error);
    return 1;
  }
  std::vector<size_t> senders(std::min(o.senders, o.members));
  std::iota(senders.begin(), senders.end(), size_t{0});
  MessageLoadOptions mo;
  mo.rate = o.rate;
  mo.window = o.window;
  mo.text_bytes = o.text_bytes;
  mo.duration_s = o.duration_s;
  mo.drain_s = o.drain_s;
  mo.seed = o.seed;
  mo.gid = gid;
  mo.deadline_ms = o.deadline_ms;
  mo.cpu_pids = o.cpu_pids;
  MessageLoad load(&fleet, &loop, mo, std::move(senders));
  load.Run();
  return load.Fill(report) ? 0 : 1;
}

}  // namespace imbus::bench
