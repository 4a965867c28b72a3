// Rate limits against the real stack, with low limits so that a test can cross them:
// per connection (edge), per user across connections (broker), MSG/SEND apart (a
// refused message is not stored), the per-address login backoff and connection cap
// (clients bound to other 127.0.0.x source addresses play other machines), and the
// refusals counted in the broker's STATS and the edge's log line.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <regex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "client/msg_api.h"
#include "codec/body.h"
#include "codec/commands.h"
#include "test/integration/stack_util.h"

namespace imbus::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;
constexpr const char* kPassword = "password1";

class RateLimitTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    StackOptions o;
    o.edge_args = {"--conn-rate",
                   "10",
                   "--conn-burst",
                   "20",
                   "--conn-send-rate",
                   "0",
                   "--max-conns-per-ip",
                   "3",
                   "--login-free-failures",
                   "2",
                   "--login-backoff-ms",
                   "500",
                   "--login-backoff-max-ms",
                   "5000",
                   "--stats-log-s",
                   "1"};
    o.broker_args = {"--user-rate",      "2", "--user-burst",      "8",
                     "--user-send-rate", "1", "--user-send-burst", "3"};
    stack_ = new Stack(o);
    stack_->StartBroker();
    stack_->StartActor("auth,msg");
    stack_->StartEdge();
    ASSERT_TRUE(WaitWorkers(*stack_, "auth", 1)) << stack_->Logs();
    ASSERT_TRUE(WaitWorkers(*stack_, "msg", 1)) << stack_->Logs();
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << stack_->Logs();
  }

  // A client whose connection comes from `source` (127.0.0.x): another "machine".
  static client::Client From(const std::string& source) {
    return imbus::testing::From(*stack_, source);
  }

  static uint64_t Register(const std::string& source, const std::string& name) {
    client::Client c = From(source);
    auto r = c.Register(name, kPassword);
    EXPECT_EQ(r.code, 0) << r.Describe();
    return r.value;
  }

  static client::Response RawLogin(client::Client& c, const std::string& name,
                                   const std::string& password) {
    codec::MapWriter w(2);
    w.Key("name").Str(name);
    w.Key("password").Str(password);
    return c.Call(codec::ToWire(codec::Service::kAuth), codec::auth::kLogin, w.Finish());
  }

  static int64_t RetryMs(const client::Response& r) {
    return r.body.GetInt("retry_ms").value_or(-1);
  }

  // Sends `n` requests at once and collects the answers (order of seq).
  static std::vector<client::Response> Burst(client::Client& c, int n, uint16_t service,
                                             uint16_t command,
                                             const std::function<std::string(int)>& body) {
    std::vector<uint32_t> seqs;
    for (int i = 0; i < n; ++i) seqs.push_back(c.connection().Send(service, command, body(i)));
    std::vector<client::Response> out;
    for (uint32_t seq : seqs) out.push_back(c.connection().WaitResponse(seq, seconds(20)));
    return out;
  }

  static codec::StatsMeta Stats() {
    codec::StatsMeta s;
    EXPECT_TRUE(BrokerStats(*stack_, &s));
    return s;
  }

  static constexpr int kLimited = static_cast<int>(codec::Code::kRateLimited);
  static Stack* stack_;
};
Stack* RateLimitTest::stack_ = nullptr;

TEST_F(RateLimitTest, FloodFromOneConnectionIsRefusedAndTheConnectionStaysUsable) {
  client::Client c = From("127.0.0.10");
  const uint16_t sys = codec::ToWire(codec::Service::kSys);
  auto answers = Burst(c, 200, sys, codec::sys::kPing, [](int) { return codec::EmptyBody(); });
  int ok = 0, limited = 0;
  int64_t longest = 0;
  for (const auto& r : answers) {
    if (r.code == 0) ++ok;
    if (r.code == kLimited) {
      ++limited;
      EXPECT_GT(RetryMs(r), 0) << "RATE_LIMITED without retry_ms";
      EXPECT_LE(RetryMs(r), 1000);  // one token at 10/s
      longest = std::max(longest, RetryMs(r));
    }
  }
  EXPECT_EQ(ok + limited, 200);
  EXPECT_GE(ok, 20);        // the burst went through
  EXPECT_GE(limited, 100);  // most of the flood did not
  EXPECT_FALSE(c.connection().closed());
  std::this_thread::sleep_for(milliseconds(longest));
  EXPECT_TRUE(c.Ping().ok()) << "the connection is usable again after retry_ms";
}

TEST_F(RateLimitTest, UserIsLimitedAcrossTwoConnections) {
  const std::string name = UniqueName("rl_user");
  Register("127.0.0.11", name);
  client::Client a = From("127.0.0.11");
  client::Client b = From("127.0.0.12");
  ASSERT_TRUE(a.Login(name, kPassword, "laptop").ok());
  ASSERT_TRUE(b.Login(name, kPassword, "phone").ok());
  const uint64_t before = Stats().rate_limited;
  // SYS/ROUTE goes through the broker; 8 + 8 against a user burst of 8 (each
  // connection well under its own burst of 20).
  const uint16_t sys = codec::ToWire(codec::Service::kSys);
  auto empty = [](int) { return codec::EmptyBody(); };
  auto first = Burst(a, 8, sys, codec::sys::kRoute, empty);
  auto second = Burst(b, 8, sys, codec::sys::kRoute, empty);
  int limited = 0;
  for (const auto* batch : {&first, &second}) {
    for (const auto& r : *batch) {
      ASSERT_TRUE(r.code == 0 || r.code == kLimited) << r.Describe();
      if (r.code == kLimited) {
        ++limited;
        EXPECT_GT(RetryMs(r), 0);
      }
    }
  }
  EXPECT_GE(limited, 4) << "16 requests at once against a burst of 8 at 2/s";
  EXPECT_EQ(std::count_if(second.begin(), second.end(),
                          [](const client::Response& r) { return r.code == kLimited; }) > 0,
            true)
      << "the second connection shares the first one's budget";
  EXPECT_GE(Stats().rate_limited, before + static_cast<uint64_t>(limited));
  // Another user is not affected.
  const std::string other = UniqueName("rl_other");
  Register("127.0.0.13", other);
  client::Client o = From("127.0.0.13");
  ASSERT_TRUE(o.Login(other, kPassword).ok());
  EXPECT_TRUE(o.Route().ok());
}

TEST_F(RateLimitTest, SendsOverTheUserLimitAreNotStored) {
  const std::string name = UniqueName("rl_send");
  const uint64_t me = Register("127.0.0.14", name);
  client::Client c = From("127.0.0.14");
  ASSERT_TRUE(c.Login(name, kPassword).ok());
  const uint64_t before = Stats().rate_limited_send;
  const std::string run = UniqueName("m");
  auto answers = Burst(c, 6, codec::ToWire(codec::Service::kMsg), codec::msg::kSend, [&](int i) {
    codec::MapWriter w(3);
    w.Key("to").Uint(me);
    w.Key("cmid").Str(run + "-" + std::to_string(i));
    w.Key("text").Str("text " + std::to_string(i));
    return w.Finish();
  });
  std::set<std::string> accepted;
  std::string conv;
  int limited = 0;
  for (size_t i = 0; i < answers.size(); ++i) {
    const auto& r = answers[i];
    if (r.code == 0) {
      accepted.insert(run + "-" + std::to_string(i));
      conv = r.body.GetString("conv").value_or("");
    } else {
      ASSERT_EQ(r.code, kLimited) << r.Describe();
      EXPECT_GT(RetryMs(r), 0);
      ++limited;
    }
  }
  EXPECT_GE(accepted.size(), 3u);  // the send burst
  EXPECT_GE(limited, 1);
  ASSERT_FALSE(conv.empty());
  EXPECT_GE(Stats().rate_limited_send, before + static_cast<uint64_t>(limited));
  // HISTORY holds exactly the accepted messages, numbered without gaps.
  auto h = client::History(c, conv);
  ASSERT_TRUE(h.ok()) << h.Describe();
  std::set<std::string> stored;
  for (const auto& m : h.value) stored.insert(m.cmid);
  EXPECT_EQ(stored, accepted);
  EXPECT_EQ(h.value.size(), accepted.size());
}

TEST_F(RateLimitTest, WrongPasswordsFromOneAddressBackOffWhileAnotherAddressLogsIn) {
  const std::string name = UniqueName("rl_brute");
  Register("127.0.0.15", name);
  client::Client attacker = From("127.0.0.15");
  // Two free failures, then a third attempt that also reaches auth.
  for (int i = 0; i < 3; ++i) {
    auto r = RawLogin(attacker, name, "wrong-password");
    ASSERT_EQ(r.code, static_cast<int>(codec::Code::kUnauthenticated)) << i << r.Describe();
  }
  auto limited1 = RawLogin(attacker, name, "wrong-password");
  ASSERT_EQ(limited1.code, kLimited) << limited1.Describe();
  const int64_t wait1 = RetryMs(limited1);
  EXPECT_GT(wait1, 0);
  EXPECT_LE(wait1, 500);
  // Even the right password waits: refused without reaching auth.
  EXPECT_EQ(RawLogin(attacker, name, kPassword).code, kLimited);
  // Another address is not affected.
  client::Client user = From("127.0.0.16");
  EXPECT_TRUE(user.Login(name, kPassword).ok());

  std::this_thread::sleep_for(milliseconds(wait1));
  auto failed = RawLogin(attacker, name, "wrong-password");
  ASSERT_EQ(failed.code, static_cast<int>(codec::Code::kUnauthenticated)) << failed.Describe();
  auto limited2 = RawLogin(attacker, name, "wrong-password");
  ASSERT_EQ(limited2.code, kLimited) << limited2.Describe();
  EXPECT_GT(RetryMs(limited2), wait1) << "the wait grows";
  EXPECT_GT(RetryMs(limited2), 500);
  EXPECT_LE(RetryMs(limited2), 1000);

  // After the wait the right password works, and the address starts afresh.
  std::this_thread::sleep_for(milliseconds(RetryMs(limited2)));
  auto ok = RawLogin(attacker, name, kPassword);
  ASSERT_EQ(ok.code, 0) << ok.Describe();
  EXPECT_EQ(RawLogin(attacker, name, "wrong-password").code,
            static_cast<int>(codec::Code::kUnauthenticated));
}

TEST_F(RateLimitTest, ConnectionsOverThePerAddressCapAreRefusedPolitely) {
  std::vector<client::Client> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(From("127.0.0.17"));
    ASSERT_TRUE(held.back().Ping().ok()) << i;
  }
  client::Client extra = From("127.0.0.17");
  auto f = extra.connection().NextFrame(seconds(10));
  ASSERT_TRUE(f.has_value()) << "no SYS/ERROR before the close";
  EXPECT_EQ(f->header.service, codec::ToWire(codec::Service::kSys));
  EXPECT_EQ(f->header.command, codec::sys::kError);
  codec::Body body;
  std::string error;
  ASSERT_TRUE(codec::Body::Parse(f->body, &body, &error)) << error;
  EXPECT_EQ(body.GetInt("code").value_or(0), kLimited);
  EXPECT_FALSE(extra.connection().NextFrame(seconds(10)).has_value());
  EXPECT_TRUE(extra.connection().closed());
  // Another address connects.
  client::Client other = From("127.0.0.18");
  EXPECT_TRUE(other.Ping().ok());
  // A slot freed is a slot to use (once the edge has seen the close).
  held.pop_back();
  const auto deadline = Clock::now() + seconds(20);
  bool reconnected = false;
  while (!reconnected && Clock::now() < deadline) {
    client::Client again = From("127.0.0.17");
    reconnected = again.Ping().ok();
    if (!reconnected) std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(reconnected);
  // The edge counts its refusals in its log line.
  const std::regex counted(R"(rate limits: .* ([1-9][0-9]*) connections over the per-address cap)");
  bool logged = false;
  const auto log_deadline = Clock::now() + seconds(20);
  while (!logged && Clock::now() < log_deadline) {
    const std::string log = stack_->edge(0).Log();
    logged = std::regex_search(log, counted);
    if (!logged) std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_TRUE(logged);
}

}  // namespace
}  // namespace imbus::testing
