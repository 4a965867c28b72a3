// PRESENCE through the real binaries: STATUS to friends on login, logout, edge
// death (kill -9) and idle timeout, nothing for a second device; IS_ONLINE and
// PEER_ADDR (with the P2P_INCOMING push); answers right across presence worker
// restarts and additions.
#include <gtest/gtest.h>

#include "client/directory_api.h"
#include "client/presence_api.h"
#include "codec/commands.h"
#include "test/integration/stack_util.h"

namespace imbus::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;
using codec::Code;
constexpr int C(Code c) { return static_cast<int>(c); }

struct User {
  uint64_t uid = 0;
  std::string name;
};

User Register(Stack& stack) {
  client::Client c = Connected(stack);
  User u{0, UniqueName("p")};
  auto r = c.Register(u.name, "password1");
  EXPECT_TRUE(r.ok()) << r.Describe();
  u.uid = r.value;
  return u;
}

client::Client LoggedIn(Stack& stack, const User& u, size_t edge = 0,
                        const std::string& device = {}) {
  client::Client c = Connected(stack, edge);
  auto r = c.Login(u.name, "password1", device);
  EXPECT_TRUE(r.ok()) << r.Describe();
  return c;
}

// Waits for a STATUS push about `uid`; other pushes are skipped. Pings meanwhile so
// a short idle timeout does not close the watcher. nullopt on timeout.
std::optional<bool> WaitStatus(client::Client& c, uint64_t uid, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto push = c.connection().WaitPush(milliseconds(300));
    if (push) {
      auto s = client::ParseStatus(*push);
      if (s && s->uid == uid) return s->online;
      continue;
    }
    if (c.connection().closed()) return std::nullopt;
    (void)c.Ping();
  }
  return std::nullopt;
}

// Waits until the broker lists exactly `n` presence workers (a killed one is
// dropped after the heartbeat loss), so no event goes to a dead worker.
bool WaitExactPresenceWorkers(const Stack& stack, size_t n) {
  const auto deadline = Clock::now() + seconds(20);
  while (Clock::now() < deadline) {
    codec::StatsMeta stats;
    if (BrokerStats(stack, &stats)) {
      size_t count = 0;
      for (const auto& w : stats.workers) {
        for (const auto& s : w.services) count += (s == "presence") ? 1 : 0;
      }
      if (count == n) return true;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  return false;
}

class PresenceStackTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) std::cerr << stack_->Logs();
  }
  void Start(StackOptions options = {}) {
    stack_ = std::make_unique<Stack>(options);
    stack_->StartBroker();
    stack_->StartEdge();
    stack_->StartEdge();
    stack_->StartActor("auth,directory");
    stack_->StartActor("presence");
    ASSERT_TRUE(WaitWorkers(*stack_, "presence", 1));
    ASSERT_TRUE(WaitWorkers(*stack_, "directory", 1));
  }
  // Two friends by request and accept (issue 18). Both sessions end before this
  // returns, and `a` has seen `b` go offline, so no STATUS of theirs is in flight.
  void Befriend(const User& a, const User& b) {
    client::Client ca = LoggedIn(*stack_, a);
    auto r = client::RequestFriend(ca, b.uid);
    ASSERT_TRUE(r.ok()) << r.Describe();
    ASSERT_TRUE(r.value);  // pending
    client::Client cb = LoggedIn(*stack_, b);
    auto ok = client::AcceptFriend(cb, a.uid);
    ASSERT_TRUE(ok.ok()) << ok.Describe();
    ASSERT_TRUE(cb.Logout().ok());
    // b's login event may reach presence after the accept: a STATUS true first.
    std::optional<bool> status = WaitStatus(ca, b.uid, seconds(5));
    if (status == std::optional<bool>(true)) status = WaitStatus(ca, b.uid, seconds(5));
    ASSERT_EQ(status, std::optional<bool>(false));
    ASSERT_TRUE(ca.Logout().ok());
  }
  std::unique_ptr<Stack> stack_;
};

TEST_F(PresenceStackTest, StatusOnLoginLogoutEdgeDeathAndNotForSecondDevice) {
  Start();
  User w = Register(*stack_);
  User u = Register(*stack_);
  User stranger = Register(*stack_);
  Befriend(w, u);
  client::Client watcher = LoggedIn(*stack_, w, 0);
  client::Client outsider = LoggedIn(*stack_, stranger, 0);

  {
    client::Client phone = LoggedIn(*stack_, u, 1, "phone");
    EXPECT_EQ(WaitStatus(watcher, u.uid, seconds(5)), std::optional<bool>(true));
    // A second device coming and going says nothing.
    {
      client::Client laptop = LoggedIn(*stack_, u, 1, "laptop");
      EXPECT_EQ(WaitStatus(watcher, u.uid, milliseconds(1500)), std::nullopt);
      ASSERT_TRUE(laptop.Logout().ok());
    }
    EXPECT_EQ(WaitStatus(watcher, u.uid, milliseconds(1500)), std::nullopt);
    ASSERT_TRUE(phone.Logout().ok());
    EXPECT_EQ(WaitStatus(watcher, u.uid, seconds(5)), std::optional<bool>(false));
  }
  // Not a friend: no STATUS for the outsider.
  EXPECT_EQ(WaitStatus(outsider, u.uid, milliseconds(500)), std::nullopt);

  // The user's edge dies (kill -9): the broker notices the heartbeat loss.
  client::Client doomed = LoggedIn(*stack_, u, 1);
  EXPECT_EQ(WaitStatus(watcher, u.uid, seconds(5)), std::optional<bool>(true));
  const auto killed = Clock::now();
  stack_->edge(1).Kill();
  EXPECT_EQ(WaitStatus(watcher, u.uid, seconds(10)), std::optional<bool>(false));
  EXPECT_LT(Clock::now() - killed, seconds(8));
  auto online = client::IsOnline(watcher, u.uid);
  ASSERT_TRUE(online.ok()) << online.Describe();
  EXPECT_FALSE(online.value);
}

TEST_F(PresenceStackTest, StatusOfflineOnIdleTimeout) {
  Start(StackOptions{.idle_timeout_s = 2});
  User w = Register(*stack_);
  User u = Register(*stack_);
  Befriend(w, u);
  client::Client watcher = LoggedIn(*stack_, w, 0);
  client::Client idle = LoggedIn(*stack_, u, 1);
  EXPECT_EQ(WaitStatus(watcher, u.uid, seconds(5)), std::optional<bool>(true));
  // `idle` sends nothing more; the watcher pings (in WaitStatus).
  EXPECT_EQ(WaitStatus(watcher, u.uid, seconds(8)), std::optional<bool>(false));
}

TEST_F(PresenceStackTest, IsOnlineAndPeerAddr) {
  Start();
  User a = Register(*stack_);
  User b = Register(*stack_);
  {
    // Not friends: presence and addresses are refused (issue 18).
    client::Client stranger = LoggedIn(*stack_, a, 0);
    EXPECT_EQ(client::IsOnline(stranger, b.uid).code, C(Code::kForbidden));
    EXPECT_EQ(client::PeerAddr(stranger, b.uid).code, C(Code::kForbidden));
  }
  Befriend(a, b);
  client::Client ca = LoggedIn(*stack_, a, 0);
  {
    client::Client anon = Connected(*stack_);
    EXPECT_EQ(client::IsOnline(anon, a.uid).code, C(Code::kUnauthenticated));
    EXPECT_EQ(client::PeerAddr(anon, a.uid).code, C(Code::kUnauthenticated));
  }
  auto r = client::IsOnline(ca, b.uid);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_FALSE(r.value);
  EXPECT_EQ(client::IsOnline(ca, 99999999).code, C(Code::kNotFound));
  auto off = client::PeerAddr(ca, b.uid);
  ASSERT_TRUE(off.ok()) << off.Describe();
  EXPECT_FALSE(off.value.online);
  EXPECT_TRUE(off.value.addrs.empty());
  EXPECT_TRUE(off.value.ticket.empty());
  EXPECT_EQ(client::PeerAddr(ca, 99999999).code, C(Code::kNotFound));
  EXPECT_EQ(client::PeerAddr(ca, a.uid).code, C(Code::kBadRequest));

  // b logs in declaring its local address and P2P port.
  client::Client cb = Connected(*stack_, 1);
  codec::MapWriter login(4);
  login.Key("name").Str(b.name).Key("password").Str("password1");
  login.Key("local_host").Str("192.168.7.7").Key("p2p_port").Uint(4321);
  ASSERT_TRUE(
      cb.Call(codec::ToWire(codec::Service::kAuth), codec::auth::kLogin, login.Finish()).ok());
  EXPECT_TRUE(client::IsOnline(ca, b.uid).value);

  auto peer = client::PeerAddr(ca, b.uid);
  ASSERT_TRUE(peer.ok()) << peer.Describe();
  EXPECT_TRUE(peer.value.online);
  EXPECT_EQ(peer.value.ticket.size(), 32u);
  ASSERT_EQ(peer.value.addrs.size(), 2u);
  EXPECT_EQ(peer.value.addrs[0].kind, "public");
  EXPECT_EQ(peer.value.addrs[0].host, "127.0.0.1");
  EXPECT_EQ(peer.value.addrs[0].port, cb.connection().local_port());
  EXPECT_EQ(peer.value.addrs[1].kind, "local");
  EXPECT_EQ(peer.value.addrs[1].host, "192.168.7.7");
  EXPECT_EQ(peer.value.addrs[1].port, 4321);

  // b is told who is dialing, with a's addresses and the same ticket.
  std::optional<client::P2pIncoming> incoming;
  const auto deadline = Clock::now() + seconds(5);
  while (!incoming && Clock::now() < deadline) {
    if (auto p = cb.connection().WaitPush(milliseconds(200)))
      incoming = client::ParseP2pIncoming(*p);
  }
  ASSERT_TRUE(incoming.has_value());
  EXPECT_EQ(incoming->uid, a.uid);
  EXPECT_EQ(incoming->ticket, peer.value.ticket);
  ASSERT_EQ(incoming->addrs.size(), 1u);  // a declared no local address
  EXPECT_EQ(incoming->addrs[0].kind, "public");
  EXPECT_EQ(incoming->addrs[0].port, ca.connection().local_port());
  // A new ticket each time.
  EXPECT_NE(client::PeerAddr(ca, b.uid).value.ticket, peer.value.ticket);
}

TEST_F(PresenceStackTest, CorrectAcrossWorkerRestartAndAddition) {
  Start();
  User w = Register(*stack_);
  User u = Register(*stack_);
  Befriend(w, u);
  client::Client watcher = LoggedIn(*stack_, w, 0);
  client::Client cu = LoggedIn(*stack_, u, 1);
  EXPECT_EQ(WaitStatus(watcher, u.uid, seconds(5)), std::optional<bool>(true));

  // The presence worker dies; a new one knows at once who is online (no cache).
  // (Waiting for the broker to drop it first: an event dispatched to a worker that
  // died unnoticed is lost with it — the broker's limit, not presence's.)
  stack_->actor(1).Kill();
  ASSERT_TRUE(WaitExactPresenceWorkers(*stack_, 0));
  stack_->StartActor("presence");
  ASSERT_TRUE(WaitExactPresenceWorkers(*stack_, 1));
  auto deadline = Clock::now() + seconds(15);
  client::Result<bool> r;
  do {
    r = client::IsOnline(watcher, u.uid);
  } while (!r.ok() && Clock::now() < deadline);  // UNAVAILABLE until the broker drops the dead one
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_TRUE(r.value);
  ASSERT_TRUE(cu.Logout().ok());
  EXPECT_EQ(WaitStatus(watcher, u.uid, seconds(10)), std::optional<bool>(false));

  // A second presence worker added at runtime: every answer is right, whichever serves.
  stack_->StartActor("presence");
  ASSERT_TRUE(WaitExactPresenceWorkers(*stack_, 2));
  client::Client again = LoggedIn(*stack_, u, 1);
  EXPECT_EQ(WaitStatus(watcher, u.uid, seconds(5)), std::optional<bool>(true));
  for (int i = 0; i < 20; ++i) {
    auto o = client::IsOnline(watcher, u.uid);
    ASSERT_TRUE(o.ok()) << o.Describe();
    EXPECT_TRUE(o.value);
  }
  // The older worker goes: the one added at runtime answers alone, and right.
  stack_->actor(2).Kill();
  ASSERT_TRUE(WaitExactPresenceWorkers(*stack_, 1));
  deadline = Clock::now() + seconds(15);
  do {
    r = client::IsOnline(watcher, u.uid);
  } while (!r.ok() && Clock::now() < deadline);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_TRUE(r.value);
  ASSERT_TRUE(again.Logout().ok());
  EXPECT_EQ(WaitStatus(watcher, u.uid, seconds(10)), std::optional<bool>(false));
}

}  // namespace
}  // namespace imbus::testing
