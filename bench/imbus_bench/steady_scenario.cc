// `steady`: a steady request load over a held fleet, for outage drills (a broker
// killed and restarted, a broker pair failing over). N users log in; with
// --friends each befriends the next (a ring, so everyone has two friends: a
// request the next one accepts); then
// --rate PRESENCE/IS_ONLINE requests per second (each crosses the edge, the broker
// and a presence worker) run for --duration-s. SIGUSR1 closes --leavers connections
// at that moment (spread out: never two friends). Reports how every request was
// answered and how fast, the longest time without an OK answer (the outage as
// clients saw it, with its end as wall-clock time for the drill to compare), and
// the PRESENCE/STATUS pushes seen: a leaver reported offline to a friend (expected)
// and any other (spurious: someone announced who never came or went).
#include <csignal>
#include <cstdio>
#include <ctime>
#include <set>
#include <unordered_set>

#include "bench/imbus_bench/fleet.h"
#include "bench/imbus_bench/scenarios.h"
#include "codec/commands.h"

namespace imbus::bench {

namespace {

volatile std::sig_atomic_t g_leave = 0;
extern "C" void OnLeaveSignal(int) { g_leave = 1; }

int64_t UnixMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

std::string UidBody(uint64_t uid) {
  codec::MapWriter w(1);
  w.Key("uid").Uint(uid);
  return w.Finish();
}

constexpr int64_t kSlowNs = 5'000'000'000;  // "answered within 5 s"

}  // namespace

int RunSteady(const BenchOptions& o, Report* report) {
  EventLoop loop;
  Fleet fleet(&loop, FleetOptionsFor(o, o.connections, "s"));
  if (!fleet.Establish(o.setup_timeout_s)) {
    report->SetText("last_error", fleet.stats().last_error);
    return 1;
  }
  const size_t n = fleet.size();

  if (o.friends && n >= 3) {
    // A ring of friendships, a window of requests at a time.
    Progress progress("friends");
    size_t next = 0;
    size_t in_flight = 0;
    size_t done = 0;
    size_t failed = 0;
    constexpr size_t kWindow = 256;
    loop.RunUntil(
        [&] { return done == n; }, NowNs() + int64_t{o.setup_timeout_s} * 1'000'000'000,
        [&] {
          while (in_flight < kWindow && next < n) {
            const size_t i = next++;
            ++in_flight;
            // A request, then the next user accepts it (issue 18: friendship by
            // consent; a server with --immediate-friends answers pending: false).
            auto finish = [&](int code) {
              --in_flight;
              ++done;
              // CONFLICT: already friends or asked (a rerun with --reuse-users).
              if (code != 0 && code != static_cast<int>(codec::Code::kConflict)) ++failed;
            };
            fleet.conn(i).Request(
                codec::ToWire(codec::Service::kDirectory), codec::directory::kAddFriend,
                UidBody(fleet.conn((i + 1) % n).uid),
                [&, i, finish](int code, const codec::Body& body) {
                  if (code != 0 || !body.GetBool("pending").value_or(false)) return finish(code);
                  fleet.conn((i + 1) % n)
                      .Request(codec::ToWire(codec::Service::kDirectory),
                               codec::directory::kAcceptFriend, UidBody(fleet.conn(i).uid),
                               [finish](int code2, const codec::Body&) { finish(code2); });
                });
          }
          fleet.Tick();
          progress.Maybe([&] { return std::to_string(done) + " of " + std::to_string(n); });
        });
    report->Set("friendships", static_cast<uint64_t>(done - failed));
    if (done != n || failed > 0) {
      std::fprintf(stderr, "imbus-bench: %zu of %zu ADD_FRIEND failed\n", failed + (n - done), n);
      return 1;
    }
  }

  // Leavers: every (n / leavers)-th user, so no two are friends (needs n / leavers >= 3).
  std::vector<size_t> leavers;
  if (o.leavers > 0 && n / o.leavers >= 3) {
    for (size_t k = 0; k < o.leavers; ++k) leavers.push_back(k * (n / o.leavers));
  }
  std::unordered_set<uint64_t> leaver_uids;
  std::set<uint64_t> reported_offline;
  uint64_t status_pushes = 0;
  uint64_t spurious = 0;
  std::string first_spurious;
  bool measuring = false;
  for (size_t i = 0; i < n; ++i) {
    fleet.conn(i).set_on_push([&, i](const codec::Frame& f, const codec::Body& body) {
      if (!measuring || f.header.service != codec::ToWire(codec::Service::kPresence) ||
          f.header.command != codec::presence::kStatus) {
        return;
      }
      ++status_pushes;
      const uint64_t uid = body.GetUint("uid").value_or(0);
      const bool online = body.GetBool("online").value_or(true);
      if (!online && leaver_uids.count(uid) > 0) {
        reported_offline.insert(uid);
        return;
      }
      if (spurious++ == 0) {
        first_spurious = "uid " + std::to_string(uid) + (online ? " online" : " offline") +
                         " to conn " + std::to_string(i);
      }
    });
  }

  std::signal(SIGUSR1, OnLeaveSignal);
  std::fprintf(stderr, "[steady] measuring: %zu users, %.0f requests/s, %.0f s\n", n, o.rate,
               o.duration_s);
  measuring = true;
  const int64_t start_ns = NowNs();
  const int64_t unix_at_start = UnixMs();
  const int64_t end_ns = start_ns + static_cast<int64_t>(o.duration_s * 1e9);
  uint64_t sent = 0, answered = 0, ok = 0, unavailable = 0, other = 0, lost = 0, slow = 0;
  int64_t max_ns = 0;
  int64_t last_ok_ns = start_ns;
  int64_t gap_ns = 0, gap_start_ns = 0, gap_end_ns = 0;
  int64_t leave_ns = 0;
  Histogram latency;
  size_t rr = 0;
  std::vector<bool> is_leaver(n, false);
  for (size_t i : leavers) is_leaver[i] = true;
  Progress progress("steady");
  auto outstanding = [&] { return sent - answered - lost; };
  loop.RunUntil(
      [&] { return NowNs() >= end_ns && outstanding() == 0; },
      end_ns + static_cast<int64_t>(o.drain_s * 1e9),
      [&] {
        const int64_t now = NowNs();
        if (g_leave != 0 && leave_ns == 0) {
          leave_ns = now;
          for (size_t i : leavers) {
            leaver_uids.insert(fleet.conn(i).uid);
            fleet.conn(i).Close();
          }
          std::fprintf(stderr, "[steady] closed %zu leavers\n", leavers.size());
        }
        const uint64_t due =
            now < end_ns ? static_cast<uint64_t>(static_cast<double>(now - start_ns) / 1e9 * o.rate)
                         : sent;
        for (size_t tries = 0; sent < due && tries < 4 * n; ++tries) {
          const size_t i = rr++ % n;
          BenchConn& c = fleet.conn(i);
          if (is_leaver[i] || c.state() != BenchConn::State::kOpen) continue;
          const int64_t sent_ns =
              start_ns + static_cast<int64_t>(static_cast<double>(sent) / o.rate * 1e9);
          ++sent;
          c.Request(codec::ToWire(codec::Service::kPresence), codec::presence::kIsOnline,
                    UidBody(fleet.conn((i + 1) % n).uid),
                    [&, sent_ns](int code, const codec::Body&) {
                      const int64_t at = NowNs();
                      if (code == kConnLost) {
                        ++lost;
                        return;
                      }
                      ++answered;
                      const int64_t took = at - sent_ns;
                      latency.Record(took);
                      max_ns = std::max(max_ns, took);
                      if (took > kSlowNs) ++slow;
                      if (code == 0) {
                        ++ok;
                        if (at - last_ok_ns > gap_ns) {
                          gap_ns = at - last_ok_ns;
                          gap_start_ns = last_ok_ns;
                          gap_end_ns = at;
                        }
                        last_ok_ns = at;
                      } else if (code == static_cast<int>(codec::Code::kUnavailable)) {
                        ++unavailable;
                      } else {
                        ++other;
                      }
                    });
        }
        fleet.Tick();
        progress.Maybe([&] {
          return "sent " + std::to_string(sent) + "  ok " + std::to_string(ok) + "  unavailable " +
                 std::to_string(unavailable) + "  in flight " + std::to_string(outstanding()) +
                 "  status " + std::to_string(status_pushes);
        });
      });
  measuring = false;
  auto unix_ms = [&](int64_t ns) { return unix_at_start + (ns - start_ns) / 1'000'000; };

  report->Set("users", static_cast<uint64_t>(n));
  report->Set("rate", o.rate, "req/s");
  report->Set("requests", sent);
  report->Set("answered", answered);
  report->Set("ok", ok);
  report->Set("unavailable", unavailable);
  report->Set("other_errors", other);
  report->Set("unanswered", outstanding());
  report->Set("connection_lost", lost);
  report->Set("answered_after_5s", slow);
  report->Set("max_answer_ms", static_cast<double>(max_ns) / 1e6, "ms");
  report->Set("longest_ok_gap_ms", static_cast<double>(gap_ns) / 1e6, "ms");
  report->Set("gap_start_unix_ms", unix_ms(gap_start_ns));
  report->Set("gap_end_unix_ms", unix_ms(gap_end_ns));
  report->Set("leavers", static_cast<uint64_t>(leave_ns != 0 ? leavers.size() : 0));
  report->Set("leave_unix_ms", leave_ns != 0 ? unix_ms(leave_ns) : int64_t{0});
  report->Set("leavers_reported_offline", static_cast<uint64_t>(reported_offline.size()));
  report->Set("status_pushes", status_pushes);
  report->Set("status_spurious", spurious);
  if (!first_spurious.empty()) report->SetText("first_spurious", first_spurious);
  // Closed by the server (kicked, timed out): none should be; leavers closed themselves.
  const uint64_t closed_by_server =
      fleet.stats().closed_later - (leave_ns != 0 ? leavers.size() : 0);
  report->Set("closed_by_server", closed_by_server);
  report->AddLatency("is_online", latency);
  const bool good = outstanding() == 0 && lost == 0 && closed_by_server == 0;
  return good ? 0 : 1;
}

}  // namespace imbus::bench
