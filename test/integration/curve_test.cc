// CURVE on the bus, end to end with the real binaries: a stack whose broker admits
// only allowed keys serves clients through the edge, while an actor with a key not
// on the allow list and an edge without CURVE never join (STATS) and are logged.
#include <gtest/gtest.h>

#include "test/integration/stack_util.h"

namespace imbus::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class CurveTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    StackOptions options;
    options.curve = true;
    stack_ = new Stack(options);
    stack_->StartBroker();
    stack_->StartActor("auth", 1);
    stack_->StartEdge();
    ASSERT_TRUE(WaitWorkers(*stack_, "auth", 1)) << stack_->Logs();
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << stack_->Logs();
  }

  // Waits until STATS reports at least `n` refused peers; the last STATS in *stats.
  static bool WaitRefused(uint64_t n, codec::StatsMeta* stats) {
    const auto deadline = std::chrono::steady_clock::now() + seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (BrokerStats(*stack_, stats) && stats->refused_peers >= n) return true;
      std::this_thread::sleep_for(milliseconds(100));
    }
    return false;
  }

  static Stack* stack_;
};
Stack* CurveTest::stack_ = nullptr;

TEST_F(CurveTest, ServesClientsEndToEnd) {
  const std::string name = UniqueName("curve");
  client::Client c = Connected(*stack_);
  auto reg = c.Register(name, "secret-pw");
  ASSERT_TRUE(reg.ok()) << reg.Describe();
  auto login = c.Login(name, "secret-pw", "laptop");
  ASSERT_TRUE(login.ok()) << login.Describe();
  EXPECT_EQ(login.value.uid, reg.value);

  codec::StatsMeta stats;
  ASSERT_TRUE(BrokerStats(*stack_, &stats));
  ASSERT_EQ(stats.edges.size(), 1u);
  EXPECT_EQ(stats.edges[0].name, "edge0");
  EXPECT_EQ(stats.sessions, 1u);
}

TEST_F(CurveTest, ActorWithUnknownKeyCannotJoin) {
  bus::CurveClientKeys stranger;
  stranger.server_public_key = stack_->peer_curve().server_public_key;
  std::string error;
  ASSERT_TRUE(bus::GenerateCurveKeyPair(&stranger.public_key, &stranger.secret_key, &error))
      << error;
  codec::StatsMeta before;
  ASSERT_TRUE(BrokerStats(*stack_, &before));
  const size_t log_from = stack_->broker().LogSize();

  // It serves "directory", which no allowed worker does: if it got in, STATS would say.
  const size_t i = stack_->StartActor("directory", 1, 8192, &stranger);
  const std::string prefix = bus::CurveKeyPrefix(stranger.public_key);
  const auto refused = stack_->broker().WaitForLog("with key " + prefix, seconds(30), log_from);
  ASSERT_TRUE(refused) << "broker never logged the refusal";
  EXPECT_NE(refused->find("127.0.0.1"), std::string::npos) << *refused;
  // The actor says why instead of waiting in silence.
  EXPECT_TRUE(stack_->actor(i).WaitForLog("refused our CURVE key", seconds(30)));

  codec::StatsMeta stats;
  ASSERT_TRUE(WaitRefused(before.refused_peers + 1, &stats));
  // Give it a few more reconnects (each refused) and look again.
  ASSERT_TRUE(WaitRefused(stats.refused_peers + 2, &stats));
  for (const auto& w : stats.workers) {
    for (const auto& s : w.services) EXPECT_NE(s, "directory") << w.id;
  }
  EXPECT_TRUE(stack_->actor(i).Running());
}

TEST_F(CurveTest, EdgeWithoutCurveCannotJoin) {
  codec::StatsMeta before;
  ASSERT_TRUE(BrokerStats(*stack_, &before));
  const size_t log_from = stack_->broker().LogSize();
  const bus::CurveClientKeys none;
  const size_t i = stack_->StartEdge(&none);
  ASSERT_TRUE(stack_->broker().WaitForLog("mechanism mismatch", seconds(30), log_from))
      << "broker never logged the refusal";
  EXPECT_TRUE(stack_->edge(i).WaitForLog("handshake with broker", seconds(30)));

  codec::StatsMeta stats;
  ASSERT_TRUE(WaitRefused(before.refused_peers + 2, &stats));
  ASSERT_EQ(stats.edges.size(), 1u);
  EXPECT_EQ(stats.edges[0].name, "edge0");
}

TEST_F(CurveTest, RawDealerWithoutCurveGetsNoStats) {
  zmq::context_t ctx;
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.connect(stack_->bus_endpoint());
  ASSERT_TRUE(bus::SendBus(s, {}, codec::BusType::kReady,
                           codec::PackMeta(codec::Ready{"worker", "x", {"msg"}, "", 0}), {}));
  bus::SendBus(s, {}, codec::BusType::kStats, codec::PackMeta(codec::Heartbeat{}), {});
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, milliseconds(1500));
  EXPECT_EQ(item.revents & ZMQ_POLLIN, 0) << "the broker answered a peer without CURVE";

  codec::StatsMeta stats;
  ASSERT_TRUE(BrokerStats(*stack_, &stats));
  for (const auto& w : stats.workers) {
    for (const auto& svc : w.services) EXPECT_NE(svc, "msg") << w.id;
  }
}

}  // namespace
}  // namespace imbus::testing
