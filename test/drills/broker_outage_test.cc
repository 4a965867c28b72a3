// Drill 5: the broker is never the outage. Real processes, thousands of sessions.
//
// - RestartUnderFiveThousandSessions: 5,000 logged-in users (friends in a ring) and
//   400 requests/s from imbus-bench `steady`; the broker is killed (-9) and started
//   again 1.5 s later, and 50 users disconnect while it is down. Every request is
//   answered within 5 s, the first OK comes within 3 s of the restart, each edge
//   thread announced itself to the new broker once, no friend hears a STATUS about
//   a user who stayed, and every leaver's friends hear it went offline.
// - PairFailsOverAndBack: a primary/backup pair under the drills' chat load plus the
//   steady load: kill -9 of the active broker, service again within 3 s on the other,
//   the old primary comes back passive, a second failover works, nothing
//   acknowledged lost (checked against MariaDB).
#include <sys/resource.h>
#include <time.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

#include "bus/stats_query.h"
#include "test/drills/drill.h"
#include "test/integration/stack_util.h"

namespace imbus::testing {
namespace {

int64_t UnixMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// The number under a top-level "key" in imbus-bench's flat JSON (-1: missing).
double JsonNumber(const std::string& json, const std::string& key) {
  const std::regex re("\"" + key + "\": (-?[0-9.]+)");
  std::smatch m;
  if (!std::regex_search(json, m, re)) return -1;
  return std::stod(m[1].str());
}

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/imbus-outage-" + std::to_string(::getpid()) + "-" +
         name;
}

// Edges and the bench need thousands of descriptors; children inherit ours.
bool RaiseFdLimit(rlim_t want) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur >= want;
}

codec::StatsMeta StatsOf(const Stack& stack, size_t broker) {
  codec::StatsMeta stats;
  std::string error;
  EXPECT_TRUE(bus::QueryStats(stack.bus_endpoint(broker), std::chrono::seconds(5), &stats, &error,
                              &stack.control_curve()))
      << "broker " << broker << ": " << error;
  return stats;
}

// imbus-bench `steady` against edge 0, as a child process; Finish() waits for it
// and returns its JSON.
class SteadyLoad {
 public:
  SteadyLoad(Stack& stack, size_t users, int rate, int duration_s, size_t leavers)
      : json_(TempPath("steady-" + std::to_string(users) + ".json")) {
    std::remove(json_.c_str());
    process_ = Process::Start(
        IMBUS_BENCH_BIN,
        {"steady", "--server", "127.0.0.1:" + std::to_string(stack.edge_port(0)), "--connections",
         std::to_string(users), "--rate", std::to_string(rate), "--duration-s",
         std::to_string(duration_s), "--drain-s", "10", "--friends", "--leavers",
         std::to_string(leavers), "--json", json_, "--setup-timeout-s", "240"});
  }
  ~SteadyLoad() { std::remove(json_.c_str()); }

  bool WaitMeasuring() {
    return process_.WaitForLog("[steady] measuring", std::chrono::seconds(300)).has_value();
  }
  void Leave() { process_.Signal(SIGUSR1); }
  std::string Finish() {
    const auto status = process_.Wait(std::chrono::seconds(120));
    EXPECT_TRUE(status.has_value()) << "imbus-bench steady did not finish";
    return ReadFile(json_);
  }
  std::string Log() const { return process_.Log(); }

 private:
  std::string json_;
  Process process_;
};

// What every outage must leave behind, read from the steady load's report.
void ExpectEveryRequestAnswered(const std::string& r, const std::string& log) {
  EXPECT_GT(JsonNumber(r, "ok"), 0) << r << log;
  EXPECT_EQ(JsonNumber(r, "unanswered"), 0) << r;
  EXPECT_EQ(JsonNumber(r, "connection_lost"), 0) << r;
  EXPECT_EQ(JsonNumber(r, "answered_after_5s"), 0) << r;
  EXPECT_LT(JsonNumber(r, "max_answer_ms"), 5000) << r;
  EXPECT_EQ(JsonNumber(r, "closed_by_server"), 0) << r;
  EXPECT_EQ(JsonNumber(r, "status_spurious"), 0) << "a friend heard about a user who stayed\n" << r;
}

class BrokerOutageDrill : public DrillTest {};

TEST_F(BrokerOutageDrill, RestartUnderFiveThousandSessions) {
  constexpr size_t kUsers = 5000;
  constexpr size_t kLeavers = 50;
  if (!RaiseFdLimit(kUsers + 500)) GTEST_SKIP() << "fd hard limit below " << kUsers + 500;
  // The defaults (1 s heartbeats, 15 s edge deadline): the figures users would see.
  options_ = StackOptions{};
  options_.edge_threads = 2;
  config_ = SharedMariaDb();
  options_.db = &config_;
  stack_ = std::make_unique<Stack>(options_);
  stack_->StartBroker();
  stack_->StartEdge();
  stack_->StartActor("auth,directory,presence", 2);
  ASSERT_TRUE(WaitWorkers(*stack_, "presence", 2));

  SteadyLoad load(*stack_, kUsers, 400, 16, kLeavers);
  ASSERT_TRUE(load.WaitMeasuring()) << load.Log();
  std::this_thread::sleep_for(seconds(3));
  stack_->broker().Kill();
  std::this_thread::sleep_for(milliseconds(750));
  load.Leave();  // 50 users go while no broker runs
  std::this_thread::sleep_for(milliseconds(750));
  const int64_t restarted_at = UnixMs();
  stack_->StartBroker();
  // While the users are still connected: every session re-bound, each edge thread
  // and worker announced once.
  std::this_thread::sleep_for(seconds(3));
  const codec::StatsMeta stats = StatsOf(*stack_, 0);
  EXPECT_EQ(stats.edge_readies, 2u) << "each edge thread announces itself once";
  EXPECT_EQ(stats.worker_readies, 2u) << "each worker announces itself once";
  EXPECT_EQ(stats.sessions, kUsers - kLeavers);
  const std::string r = load.Finish();
  std::cerr << r << "\n";

  ExpectEveryRequestAnswered(r, load.Log());
  const double first_ok_ms = JsonNumber(r, "gap_end_unix_ms") - static_cast<double>(restarted_at);
  std::cerr << "first OK " << first_ok_ms << " ms after the restart; longest gap "
            << JsonNumber(r, "longest_ok_gap_ms") << " ms\n";
  EXPECT_LE(first_ok_ms, 3000) << r;
  EXPECT_EQ(JsonNumber(r, "leavers"), kLeavers) << r;
  EXPECT_EQ(JsonNumber(r, "leavers_reported_offline"), kLeavers)
      << "a user who left during the outage was not reported offline\n"
      << r;
}

class BrokerPairDrill : public DrillTest {
 protected:
  bool WaitHaState(size_t broker, const std::string& want) {
    const auto end = std::chrono::steady_clock::now() + seconds(10);
    std::string last;
    while (std::chrono::steady_clock::now() < end) {
      last = StatsOf(*stack_, broker).ha_state;
      if (last == want) return true;
      std::this_thread::sleep_for(milliseconds(50));
    }
    ADD_FAILURE() << "broker " << broker << " is " << last << ", not " << want;
    return false;
  }
};

TEST_F(BrokerPairDrill, PairFailsOverAndBack) {
  if (!RaiseFdLimit(2000)) GTEST_SKIP() << "fd hard limit below 2,000";
  options_.broker_pair = true;
  options_.edge_threads = 2;
  config_ = SharedMariaDb();
  options_.db = &config_;
  stack_ = std::make_unique<Stack>(options_);
  stack_->StartBroker(0);
  stack_->StartBroker(1);
  stack_->StartEdge();
  stack_->StartActor("auth,directory,presence", 2);
  msg_actors_.push_back(stack_->StartActor("msg"));
  ASSERT_TRUE(WaitWorkers(*stack_, "msg", 1));
  ASSERT_TRUE(WaitWorkers(*stack_, "presence", 2));
  ASSERT_TRUE(WaitHaState(0, "active"));
  ASSERT_TRUE(WaitHaState(1, "passive"));

  SteadyLoad steady(*stack_, 1000, 200, 30, 20);
  ASSERT_TRUE(steady.WaitMeasuring()) << steady.Log();
  StartLoad();

  // First failover: the primary dies; 20 users leave while the pair fails over.
  stack_->broker(0).Kill();
  auto killed = std::chrono::steady_clock::now();
  steady.Leave();
  EXPECT_TRUE(WaitHaState(1, "active"));
  EXPECT_TRUE(load_->WaitProgress(1, seconds(3)));
  EXPECT_LE(std::chrono::steady_clock::now() - killed, seconds(3))
      << "no message acknowledged on the backup within 3 s of the primary's death";
  // It comes back and stands by.
  stack_->StartBroker(0);
  EXPECT_TRUE(WaitHaState(0, "passive"));
  EXPECT_TRUE(load_->WaitProgress(20, seconds(10)));

  // Second failover: the backup, active now, dies.
  stack_->broker(1).Kill();
  killed = std::chrono::steady_clock::now();
  EXPECT_TRUE(WaitHaState(0, "active"));
  EXPECT_TRUE(load_->WaitProgress(1, seconds(3)));
  EXPECT_LE(std::chrono::steady_clock::now() - killed, seconds(3))
      << "no message acknowledged within 3 s of the second failover";

  const std::string r = steady.Finish();
  std::cerr << r << "\n";
  ExpectEveryRequestAnswered(r, steady.Log());
  EXPECT_EQ(JsonNumber(r, "leavers_reported_offline"), 20) << r;
  ExpectRecoveredAndNothingLost("broker pair failover twice");
}

}  // namespace
}  // namespace imbus::testing
