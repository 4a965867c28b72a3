// The broker with CURVE on, in-process on tcp://127.0.0.1:*, driven by raw DEALERs:
// an allowed key is served, an unknown key, a wrong server key and no CURVE at all
// are refused (never answered) and counted in STATS.
#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "broker/broker.h"
#include "bus/curve.h"
#include "bus/peer.h"

namespace imbus::broker {
namespace {

using std::chrono::milliseconds;

bus::CurveClientKeys NewClientKeys(const std::string& server_public) {
  bus::CurveClientKeys k;
  k.server_public_key = server_public;
  std::string error;
  EXPECT_TRUE(bus::GenerateCurveKeyPair(&k.public_key, &k.secret_key, &error)) << error;
  return k;
}

// Sends STATS from a fresh DEALER with `keys` (empty: no CURVE) and waits up to
// `timeout` for the answer.
bool AskStats(zmq::context_t& ctx, const std::string& endpoint, const bus::CurveClientKeys& keys,
              milliseconds timeout, codec::StatsMeta* out) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  bus::SetCurveClient(s, keys);
  s.connect(endpoint);
  bus::SendBus(s, {}, codec::BusType::kStats, {}, {});
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, timeout);
  if ((item.revents & ZMQ_POLLIN) == 0) return false;
  zmq::message_t type, meta;
  (void)s.recv(type);
  if (type.more()) (void)s.recv(meta);
  return codec::UnpackMeta(meta.to_string_view(), out);
}

class BrokerCurveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(bus::GenerateCurveKeyPair(&server_public_, &server_secret_, &error)) << error;
    allowed_ = NewClientKeys(server_public_);
    Options o;
    o.bind = "tcp://127.0.0.1:*";
    o.curve_secret_key = server_secret_;
    o.curve_allow = {allowed_.public_key};
    broker_ = std::make_unique<Broker>(ctx_, o);
    thread_ = std::thread([this] { broker_->Run(stop_); });
  }
  void TearDown() override {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  // Polls STATS (as the allowed peer) until it counts `n` refusals.
  bool WaitRefused(uint64_t n) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < end) {
      codec::StatsMeta stats;
      if (AskStats(ctx_, broker_->endpoint(), allowed_, milliseconds(5000), &stats) &&
          stats.refused_peers >= n) {
        return true;
      }
      std::this_thread::sleep_for(milliseconds(50));
    }
    return false;
  }

  zmq::context_t ctx_;
  std::string server_public_, server_secret_;
  bus::CurveClientKeys allowed_;
  std::unique_ptr<Broker> broker_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(BrokerCurveTest, AllowedKeyIsServed) {
  codec::StatsMeta stats;
  ASSERT_TRUE(AskStats(ctx_, broker_->endpoint(), allowed_, milliseconds(10000), &stats));
  EXPECT_EQ(stats.refused_peers, 0u);
}

TEST_F(BrokerCurveTest, UnknownKeyIsRefusedAndCounted) {
  codec::StatsMeta stats;
  EXPECT_FALSE(AskStats(ctx_, broker_->endpoint(), NewClientKeys(server_public_),
                        milliseconds(1000), &stats));
  EXPECT_TRUE(WaitRefused(1));
}

TEST_F(BrokerCurveTest, WrongServerKeyIsRefusedAndCounted) {
  std::string other_public, other_secret, error;
  ASSERT_TRUE(bus::GenerateCurveKeyPair(&other_public, &other_secret, &error));
  bus::CurveClientKeys confused = allowed_;  // an allowed key, but the wrong broker key
  confused.server_public_key = other_public;
  codec::StatsMeta stats;
  EXPECT_FALSE(AskStats(ctx_, broker_->endpoint(), confused, milliseconds(1000), &stats));
  EXPECT_TRUE(WaitRefused(1));
}

TEST_F(BrokerCurveTest, PlainPeerIsRefusedAndCounted) {
  codec::StatsMeta stats;
  EXPECT_FALSE(
      AskStats(ctx_, broker_->endpoint(), bus::CurveClientKeys{}, milliseconds(1000), &stats));
  EXPECT_TRUE(WaitRefused(1));
}

}  // namespace
}  // namespace imbus::broker
