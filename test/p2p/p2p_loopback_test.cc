// Direct P2P chat on 127.0.0.1 through a real stack: two clients find each other
// with PEER_ADDR / P2P_INCOMING, connect directly from their edge ports, exchange
// TEXT both ways; a stranger with a wrong ticket is refused; when one peer goes away
// the other notices and its next message goes through the server (MSG/SEND).
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "client/file_api.h"
#include "client/msg_api.h"
#include "client/p2p.h"
#include "client/presence_api.h"
#include "codec/body.h"
#include "codec/commands.h"
#include "test/integration/stack_util.h"

namespace imbus::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr uint16_t kP2p = codec::ToWire(codec::Service::kP2p);

struct Peer {
  explicit Peer(Stack& stack) : client(milliseconds(5000)), p2p(&client) {
    std::string error;
    EXPECT_TRUE(p2p.ConnectAndListen("127.0.0.1", static_cast<uint16_t>(stack.edge_port()), &error))
        << error;
    client::Client reg(milliseconds(5000));
    EXPECT_TRUE(reg.Connect("127.0.0.1", static_cast<uint16_t>(stack.edge_port()), &error));
    name = UniqueName("p2p");
    auto r = reg.Register(name, "password1");
    EXPECT_TRUE(r.ok()) << r.Describe();
    client::LoginRequest login;
    login.name = name;
    login.password = "password1";
    p2p.FillLogin(&login);
    auto s = client.Login(login);
    EXPECT_TRUE(s.ok()) << s.Describe();
    uid = s.ok() ? s.value.uid : 0;
  }
  client::Client client;
  client::P2pSession p2p;
  std::string name;
  uint64_t uid = 0;
};

// Waits for the P2P_INCOMING push on `peer`'s edge connection.
std::optional<client::P2pIncoming> WaitIncoming(Peer& peer, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto push = peer.client.connection().WaitPush(milliseconds(200));
    if (!push) continue;
    if (auto in = client::ParseP2pIncoming(*push)) return in;
  }
  return std::nullopt;
}

// Polls `peer` until a TEXT (or path change, when `path_change`) arrives.
std::optional<client::P2pEvent> WaitEvent(Peer& peer, client::P2pEvent::Kind kind,
                                          milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    for (auto& e : peer.p2p.Poll(milliseconds(100))) {
      if (e.kind == kind) return e;
    }
  }
  return std::nullopt;
}

class P2pLoopbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Strangers dial each other here: the legacy mode in which PEER_ADDR answers
    // about non-friends too (issue 18; consent_test covers friends-only presence).
    stack_ = std::make_unique<Stack>(StackOptions{.actor_args = {"--immediate-friends"}});
    stack_->StartBroker();
    stack_->StartEdge();
    stack_->StartActor("auth,directory,presence,msg");
    ASSERT_TRUE(WaitWorkers(*stack_, "presence", 1));
    ASSERT_TRUE(WaitWorkers(*stack_, "msg", 1));
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << stack_->Logs();
  }
  // a starts, b dials back on P2P_INCOMING; both paths returned.
  std::pair<client::P2pPath, client::P2pPath> Connect(Peer& a, Peer& b) {
    auto b_side = std::async(std::launch::async, [&b]() {
      auto in = WaitIncoming(b, seconds(10));
      if (!in) return client::P2pPath::kNone;
      return b.p2p.Accept(*in);
    });
    const client::P2pPath pa = a.p2p.Start(b.uid);
    return {pa, b_side.get()};
  }
  std::unique_ptr<Stack> stack_;
};

TEST_F(P2pLoopbackTest, DirectTextBothWaysStrangerRefusedAndRelayFallback) {
  Peer a(*stack_);
  Peer b(*stack_);
  ASSERT_NE(a.uid, 0u);
  ASSERT_NE(b.uid, 0u);
  ASSERT_NE(a.p2p.port(), b.p2p.port());
  EXPECT_EQ(a.p2p.local_host(), "127.0.0.1");

  auto [pa, pb] = Connect(a, b);
  ASSERT_EQ(pa, client::P2pPath::kDirect);
  ASSERT_EQ(pb, client::P2pPath::kDirect);
  ASSERT_NE(a.p2p.direct_fd(), -1);

  // a -> b: answered by b while it polls (on another thread).
  std::string error;
  auto b_reads = std::async(std::launch::async, [&b]() {
    return WaitEvent(b, client::P2pEvent::Kind::kText, seconds(10));
  });
  EXPECT_EQ(a.p2p.Send("hello b", &error), client::P2pPath::kDirect) << error;
  auto got_b = b_reads.get();
  ASSERT_TRUE(got_b.has_value());
  EXPECT_EQ(got_b->text, "hello b");
  EXPECT_EQ(got_b->from, a.uid);
  EXPECT_GT(got_b->ts, 0);

  // b -> a.
  auto a_reads = std::async(std::launch::async, [&a]() {
    return WaitEvent(a, client::P2pEvent::Kind::kText, seconds(10));
  });
  EXPECT_EQ(b.p2p.Send("hello a", &error), client::P2pPath::kDirect) << error;
  auto got_a = a_reads.get();
  ASSERT_TRUE(got_a.has_value());
  EXPECT_EQ(got_a->text, "hello a");
  EXPECT_EQ(got_a->from, b.uid);

  // A stranger on b's listener with a wrong ticket: UNAUTHENTICATED, then closed.
  client::Connection stranger;
  ASSERT_TRUE(stranger.Connect("127.0.0.1", b.p2p.port(), milliseconds(3000), &error)) << error;
  codec::MapWriter hello(2);
  hello.Key("uid").Uint(a.uid);
  hello.Key("ticket").Str("not-the-ticket");
  const uint32_t seq = stranger.Send(kP2p, codec::p2p::kHello, hello.Finish());
  ASSERT_NE(seq, 0u);
  for (int i = 0; i < 10; ++i) (void)b.p2p.Poll(milliseconds(50));
  client::Response refused = stranger.WaitResponse(seq, milliseconds(3000));
  EXPECT_EQ(refused.code, static_cast<int>(codec::Code::kUnauthenticated)) << refused.Describe();
  EXPECT_FALSE(stranger.NextFrame(milliseconds(2000)).has_value());
  EXPECT_TRUE(stranger.closed());
  EXPECT_EQ(b.p2p.path(), client::P2pPath::kDirect);  // the real chat is untouched

  // a's direct connection goes away (no BYE): b notices and relays.
  ::shutdown(a.p2p.direct_fd(), SHUT_RDWR);
  auto change = WaitEvent(b, client::P2pEvent::Kind::kPathChanged, seconds(10));
  ASSERT_TRUE(change.has_value());
  EXPECT_EQ(b.p2p.path(), client::P2pPath::kRelayed);
  EXPECT_EQ(b.p2p.direct_fd(), -1);

  EXPECT_EQ(b.p2p.Send("via the server", &error), client::P2pPath::kRelayed) << error;
  std::optional<client::Message> relayed;
  const auto deadline = Clock::now() + seconds(10);
  while (!relayed && Clock::now() < deadline) {
    auto push = a.client.connection().WaitPush(milliseconds(200));
    if (push) relayed = client::MessageFromPush(*push);
  }
  ASSERT_TRUE(relayed.has_value());
  EXPECT_EQ(relayed->text, "via the server");
  EXPECT_EQ(relayed->from, b.uid);
}

TEST_F(P2pLoopbackTest, ByeFallsBackAndOfflinePeerIsRelayed) {
  Peer a(*stack_);
  Peer b(*stack_);
  auto [pa, pb] = Connect(a, b);
  ASSERT_EQ(pa, client::P2pPath::kDirect);
  ASSERT_EQ(pb, client::P2pPath::kDirect);

  auto b_change = std::async(std::launch::async, [&b]() {
    return WaitEvent(b, client::P2pEvent::Kind::kPathChanged, seconds(10));
  });
  a.p2p.Close();  // BYE, answered by b
  EXPECT_EQ(a.p2p.path(), client::P2pPath::kRelayed);
  ASSERT_TRUE(b_change.get().has_value());
  EXPECT_EQ(b.p2p.path(), client::P2pPath::kRelayed);

  // An offline peer: no direct attempt, relayed at once.
  const uint64_t b_uid = b.uid;
  b.client.connection().Close();
  const auto offline_by = Clock::now() + seconds(10);
  while (Clock::now() < offline_by) {
    auto online = client::IsOnline(a.client, b_uid);
    if (online.ok() && !online.value) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  const auto start = Clock::now();
  EXPECT_EQ(a.p2p.Start(b_uid), client::P2pPath::kRelayed);
  EXPECT_LT(Clock::now() - start, seconds(4));
}

// `imbus chat` with piped stdin: /p2p makes a direct chat, the other chat dials
// back on P2P_INCOMING, and a typed line arrives as P2P TEXT.
TEST_F(P2pLoopbackTest, ChatCommandTalksDirectly) {
  const std::string alice = UniqueName("ca");
  const std::string bob = UniqueName("cb");
  {
    client::Client c = Connected(*stack_);
    ASSERT_TRUE(c.Register(alice, "password1").ok());
    ASSERT_TRUE(c.Register(bob, "password1").ok());
  }
  const std::string chat = std::string(IMBUS_CLI_BIN) +
                           " --server 127.0.0.1:" + std::to_string(stack_->edge_port()) +
                           " chat --password password1";
  Process b =
      Process::Start("/bin/sh", {"-c", "(sleep 9; echo /quit) | " + chat + " --user " + bob});
  ASSERT_TRUE(b.WaitForLog("logged in as", seconds(10)).has_value()) << b.Log();
  Process a = Process::Start("/bin/sh", {"-c", "(sleep 1; echo /p2p " + bob +
                                                   "; sleep 3; echo hello bob; sleep 3; "
                                                   "echo /quit) | " +
                                                   chat + " --user " + alice});
  EXPECT_TRUE(a.WaitForLog("talking to " + bob + ": direct", seconds(15)).has_value()) << a.Log();
  EXPECT_TRUE(a.WaitForLog("[direct] sent", seconds(10)).has_value()) << a.Log();
  EXPECT_TRUE(b.WaitForLog("talking to " + alice + ": direct", seconds(10)).has_value()) << b.Log();
  EXPECT_TRUE(b.WaitForLog("[direct] " + alice + ": hello bob", seconds(10)).has_value())
      << b.Log();
  // alice's /quit says BYE: bob's chat goes back to the relay.
  EXPECT_TRUE(b.WaitForLog("relayed (the peer ended the direct chat)", seconds(10)).has_value())
      << b.Log();
  EXPECT_TRUE(a.Wait(seconds(20)).has_value());
  EXPECT_TRUE(b.Wait(seconds(20)).has_value());
}

// P2pSession::SendFile on 127.0.0.1: the receiver polls into a directory; the file
// arrives whole with its sha256, and a second offer of the same name while the first
// is complete lands as NAME.1. IMBUS_P2P_FILE_BYTES=N sets the size (a throughput
// figure is printed, never asserted).
TEST_F(P2pLoopbackTest, FileDirectlyWithSha256) {
  Peer a(*stack_);
  Peer b(*stack_);
  auto [pa, pb] = Connect(a, b);
  ASSERT_EQ(pa, client::P2pPath::kDirect);
  ASSERT_EQ(pb, client::P2pPath::kDirect);
  char tmpl[] = "/tmp/imbus-p2pdirect-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const char* env = std::getenv("IMBUS_P2P_FILE_BYTES");
  const size_t size = env != nullptr ? std::strtoull(env, nullptr, 10) : 1000003;
  const std::string src = dir + "/data.bin";
  {
    std::string data(size, '\0');
    for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>(i ^ (i >> 9));
    FILE* f = fopen(src.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    fwrite(data.data(), 1, data.size(), f);
    fclose(f);
  }
  (void)std::system(("mkdir -p " + dir + "/in").c_str());
  b.p2p.set_receive_dir(dir + "/in");
  std::string sha, error;
  uint64_t n = 0;
  ASSERT_TRUE(client::Sha256OfFile(src, &sha, &n, &error)) << error;
  for (int round = 0; round < 2; ++round) {
    auto b_gets = std::async(std::launch::async, [&b]() {
      return WaitEvent(b, client::P2pEvent::Kind::kFileReceived, seconds(60));
    });
    const auto t0 = Clock::now();
    client::P2pFileResult r =
        a.p2p.SendFile(src, "data.bin", size, sha, "application/octet-stream");
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    EXPECT_TRUE(r.done) << r.error;
    EXPECT_EQ(r.offset, size);
    auto got = b_gets.get();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->path, dir + "/in/data.bin" + (round == 0 ? "" : ".1"));
    std::string got_sha;
    ASSERT_TRUE(client::Sha256OfFile(got->path, &got_sha, &n, &error)) << error;
    EXPECT_EQ(got_sha, sha);
    EXPECT_EQ(n, size);
    if (round == 0) {
      std::printf("P2P file on 127.0.0.1: %zu bytes in %.0f ms = %.1f MB/s\n", size, secs * 1000,
                  static_cast<double>(size) / 1e6 / secs);
    }
  }
  // A receiver that takes no files refuses the offer; nothing breaks.
  b.p2p.set_receive_dir("");
  auto b_polls = std::async(std::launch::async, [&b]() {
    return WaitEvent(b, client::P2pEvent::Kind::kFileStarted, milliseconds(1500));
  });
  client::P2pFileResult refused = a.p2p.SendFile(src, "data.bin", size, sha, "");
  EXPECT_FALSE(refused.done);
  EXPECT_FALSE(b_polls.get().has_value());
  EXPECT_EQ(a.p2p.path(), client::P2pPath::kDirect);
  (void)std::system(("rm -rf " + dir).c_str());
}

// `imbus send-file --p2p` to a user in `imbus chat --dir`: the file goes over the
// direct connection (nothing is uploaded) and lands in the receiver's directory
// with the same bytes.
TEST_F(P2pLoopbackTest, SendFileP2pLandsInTheChatsDirectory) {
  const std::string alice = UniqueName("fa");
  const std::string bob = UniqueName("fb");
  {
    client::Client c = Connected(*stack_);
    ASSERT_TRUE(c.Register(alice, "password1").ok());
    ASSERT_TRUE(c.Register(bob, "password1").ok());
  }
  char tmpl[] = "/tmp/imbus-p2pfile-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string src = dir + "/holiday photo.jpg";
  std::string data(700000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + i / 300);
  {
    FILE* f = fopen(src.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    fwrite(data.data(), 1, data.size(), f);
    fclose(f);
  }
  (void)std::system(("mkdir -p " + dir + "/in").c_str());
  const std::string cli =
      std::string(IMBUS_CLI_BIN) + " --server 127.0.0.1:" + std::to_string(stack_->edge_port());
  Process b = Process::Start(
      "/bin/sh", {"-c", "(sleep 7; echo /quit) | " + cli + " chat --password password1 --dir " +
                            dir + "/in --user " + bob});
  ASSERT_TRUE(b.WaitForLog("logged in as", seconds(10)).has_value()) << b.Log();
  Process a = Process::Start(
      IMBUS_CLI_BIN, {"--server", "127.0.0.1:" + std::to_string(stack_->edge_port()), "send-file",
                      "--p2p", bob, src, "--user", alice, "--password", "password1"});
  const auto sa = a.Wait(seconds(30));
  EXPECT_TRUE(sa && WIFEXITED(*sa) && WEXITSTATUS(*sa) == 0) << a.Log();
  EXPECT_NE(a.Log().find("sent holiday photo.jpg (700.0 kB) directly (P2P)"), std::string::npos)
      << a.Log();
  EXPECT_TRUE(b.WaitForLog("saved as " + dir + "/in/holiday photo.jpg (direct, sha256 checked)",
                           seconds(10))
                  .has_value())
      << b.Log();
  std::string got, error;
  uint64_t n = 0;
  std::string want;
  ASSERT_TRUE(client::Sha256OfFile(dir + "/in/holiday photo.jpg", &got, &n, &error)) << error;
  ASSERT_TRUE(client::Sha256OfFile(src, &want, &n, &error)) << error;
  EXPECT_EQ(got, want);
  EXPECT_TRUE(b.Wait(seconds(20)).has_value());
  (void)std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace imbus::testing
