// The cluster under change: no worker, workers added at runtime, a worker killed
// with requests in flight, the broker restarted. Every request gets an answer.
#include <gtest/gtest.h>

#include <set>

#include "codec/commands.h"
#include "test/integration/stack_util.h"

namespace imbus::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr int kUnavailable = static_cast<int>(codec::Code::kUnavailable);

std::string RegisterBody(const std::string& name, const std::string& password) {
  codec::MapWriter w(2);
  w.Key("name").Str(name);
  w.Key("password").Str(password);
  return w.Finish();
}

class ClusterTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) std::cerr << stack_.Logs();
  }
  Stack stack_{StackOptions{.queue_timeout_ms = 1500}};
};

TEST_F(ClusterTest, NoWorkerMeansUnavailableWithinBoundedTime) {
  stack_.StartBroker();
  stack_.StartEdge();
  client::Client c = Connected(stack_, 0, seconds(10));
  const auto start = Clock::now();
  auto r = c.Register(UniqueName("nobody"), "password1");
  const auto took = Clock::now() - start;
  // UNAVAILABLE from the broker's queue timeout, not the client's own timeout.
  EXPECT_EQ(r.code, kUnavailable) << r.Describe();
  EXPECT_LT(took, seconds(8));

  // A worker that appears while a request waits in the queue serves it.
  const uint32_t seq =
      c.connection().Send(codec::ToWire(codec::Service::kAuth), codec::auth::kRegister,
                          RegisterBody(UniqueName("late"), "password1"));
  ASSERT_NE(seq, 0u);
  stack_.StartActor("auth");
  auto late = c.connection().WaitResponse(seq, seconds(10));
  // Either served by the new worker, or (if it started slowly) UNAVAILABLE: never silence.
  EXPECT_TRUE(late.code == 0 || late.code == kUnavailable) << late.Describe();
  ASSERT_TRUE(WaitWorkers(stack_, "auth", 1));
  EXPECT_TRUE(c.Register(UniqueName("now"), "password1").ok());
}

TEST_F(ClusterTest, ActorStartedAtRuntimeServesRequests) {
  stack_.StartBroker();
  stack_.StartEdge();
  const size_t first = stack_.StartActor("auth");
  ASSERT_TRUE(WaitWorkers(stack_, "auth", 1));
  client::Client c = Connected(stack_);
  ASSERT_TRUE(c.Register(UniqueName("one"), "password1").ok());

  const size_t second = stack_.StartActor("auth");
  ASSERT_TRUE(WaitWorkers(stack_, "auth", 2));
  for (int i = 0; i < 20; ++i) {
    auto r = c.Register(UniqueName("spread"), "password1");
    ASSERT_TRUE(r.ok()) << r.Describe();
  }
  // Both processes served some of them (the broker counts per worker).
  codec::StatsMeta stats;
  ASSERT_TRUE(BrokerStats(stack_, &stats));
  uint64_t served_first = 0, served_second = 0;
  const std::string pid1 = "/" + std::to_string(stack_.actor(first).pid()) + "/";
  const std::string pid2 = "/" + std::to_string(stack_.actor(second).pid()) + "/";
  for (const auto& w : stats.workers) {
    if (w.id.find(pid1) != std::string::npos) served_first += w.served;
    if (w.id.find(pid2) != std::string::npos) served_second += w.served;
  }
  EXPECT_GE(served_second, 5u) << "new worker served " << served_second;
  EXPECT_GE(served_first, 5u) << "old worker served " << served_first;
}

TEST_F(ClusterTest, KilledActorWithRequestsInFlightAllAnswered) {
  stack_.StartBroker();
  stack_.StartEdge();
  // A real password cost (16 MiB) so requests pile up in the worker.
  stack_.StartActor("auth", 1, 16 << 20);
  ASSERT_TRUE(WaitWorkers(stack_, "auth", 1));
  client::Client c = Connected(stack_, 0, seconds(30));
  constexpr int kRequests = 40;
  std::vector<std::pair<uint32_t, std::string>> sent;
  for (int i = 0; i < kRequests; ++i) {
    const std::string name = UniqueName("inflight");
    const uint32_t seq =
        c.connection().Send(codec::ToWire(codec::Service::kAuth), codec::auth::kRegister,
                            RegisterBody(name, "password1"));
    ASSERT_NE(seq, 0u);
    sent.emplace_back(seq, name);
  }
  // Killed the moment the first answer arrives: the worker is hashing and the rest
  // are in flight (a fixed sleep was too long on a fast machine, which answered all).
  client::Response first = c.connection().WaitResponse(sent[0].first, seconds(20));
  stack_.actor(0).Kill();

  int ok = 0, unavailable = 0;
  std::vector<std::string> registered;
  for (const auto& [seq, name] : sent) {
    client::Response r =
        seq == sent[0].first ? std::move(first) : c.connection().WaitResponse(seq, seconds(20));
    ASSERT_NE(r.code, client::kCodeTimeout) << "request " << seq << " never answered";
    if (r.code == 0) {
      ++ok;
      registered.push_back(name);
    } else {
      EXPECT_EQ(r.code, kUnavailable) << r.Describe();
      ++unavailable;
    }
  }
  EXPECT_EQ(ok + unavailable, kRequests);
  EXPECT_GT(unavailable, 0) << "the kill came too late to catch requests in flight";

  // What was acknowledged is stored: a new worker logs those users in.
  stack_.StartActor("auth");
  ASSERT_TRUE(WaitWorkers(stack_, "auth", 1));
  for (const std::string& name : registered) {
    client::Client d = Connected(stack_);
    EXPECT_TRUE(d.Login(name, "password1").ok()) << name;
  }
}

TEST_F(ClusterTest, BrokerRestartEdgeAndActorReconnect) {
  stack_.StartBroker();
  stack_.StartEdge();
  stack_.StartActor("auth");
  ASSERT_TRUE(WaitWorkers(stack_, "auth", 1));
  const std::string name = UniqueName("survivor");
  client::Client c = Connected(stack_);
  ASSERT_TRUE(c.Register(name, "password1").ok());
  ASSERT_TRUE(c.Login(name, "password1", "phone").ok());

  stack_.broker().Kill();
  std::this_thread::sleep_for(milliseconds(500));
  stack_.StartBroker();

  // Edge and actor come back on their own; requests are served again.
  bool served = false;
  const auto deadline = Clock::now() + seconds(20);
  while (!served && Clock::now() < deadline) {
    auto r = c.Register(UniqueName("after"), "password1");
    served = r.ok();
    if (!served) std::this_thread::sleep_for(milliseconds(200));
  }
  ASSERT_TRUE(served);

  // The edge re-bound its logged-in connection: a same-device login elsewhere still
  // kicks it, which needs the new broker's session table to know it.
  client::Client phone2 = Connected(stack_);
  ASSERT_TRUE(phone2.Login(name, "password1", "phone").ok());
  auto push = c.connection().WaitPush(seconds(5));
  ASSERT_TRUE(push.has_value());
  EXPECT_EQ(push->command, codec::auth::kKicked);
}

}  // namespace
}  // namespace imbus::testing
