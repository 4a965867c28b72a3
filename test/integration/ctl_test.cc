// imbus-ctl against a running stack (two edges): drain moves new SYS/ROUTE answers
// away from the drained edge and tells its sessions to reconnect elsewhere; kick
// closes a user's sessions with AUTH/KICKED; broadcast reaches every online client;
// with CURVE on, a key that is allowed but not an admin key is refused.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "codec/commands.h"
#include "test/integration/stack_util.h"

namespace imbus::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct CtlRun {
  int exit_code = -1;
  std::string output;
};

// Runs imbus-ctl with `args` against the stack's broker; waits for it to exit.
CtlRun RunCtl(const Stack& stack, std::vector<std::string> args,
              const std::map<std::string, std::string>& env = {}) {
  args.insert(args.begin(), {"--broker", stack.bus_endpoint()});
  Process p = Process::Start(IMBUS_CTL_BIN, args, env);
  CtlRun run;
  const std::optional<int> status = p.Wait(seconds(20));
  if (status && WIFEXITED(*status)) run.exit_code = WEXITSTATUS(*status);
  run.output = p.Log();
  return run;
}

// A registered, logged-in client on edge `edge`; *uid and *name filled.
client::Client LoggedIn(Stack& stack, size_t edge, const std::string& name,
                        const std::string& device = "laptop", bool register_first = true) {
  client::Client c = Connected(stack, edge);
  if (register_first) {
    auto reg = c.Register(name, "secret-pw");
    EXPECT_TRUE(reg.ok()) << reg.Describe();
  }
  auto login = c.Login(name, "secret-pw", device);
  EXPECT_TRUE(login.ok()) << login.Describe();
  return c;
}

// The next push of `command` on service SYS/AUTH... within `timeout`, skipping others.
std::optional<client::Push> WaitPushOf(client::Client& c, uint16_t service, uint16_t command,
                                       milliseconds timeout = milliseconds(5000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    std::optional<client::Push> p = c.connection().WaitPush(left);
    if (!p) return std::nullopt;
    if (p->service == service && p->command == command) return p;
  }
  return std::nullopt;
}

class CtlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_ = std::make_unique<Stack>();
    stack_->StartBroker();
    stack_->StartActor("auth,directory,presence,msg", 1);
    stack_->StartEdge();
    stack_->StartEdge();
    ASSERT_TRUE(WaitWorkers(*stack_, "auth", 1)) << stack_->Logs();
    // Both edges registered (STATS lists them).
    const auto deadline = std::chrono::steady_clock::now() + seconds(20);
    codec::StatsMeta stats;
    while (std::chrono::steady_clock::now() < deadline) {
      if (BrokerStats(*stack_, &stats) && stats.edges.size() == 2) break;
      std::this_thread::sleep_for(milliseconds(100));
    }
    ASSERT_EQ(stats.edges.size(), 2u) << stack_->Logs();
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << stack_->Logs();
  }
  std::unique_ptr<Stack> stack_;
};

TEST_F(CtlTest, StatusAndWorkers) {
  const CtlRun status = RunCtl(*stack_, {"status"});
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_NE(status.output.find("edge    edge0"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("edge    edge1"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("workers per service:"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("msg 1"), std::string::npos) << status.output;
  const CtlRun workers = RunCtl(*stack_, {"workers"});
  EXPECT_EQ(workers.exit_code, 0) << workers.output;
  EXPECT_NE(workers.output.find("auth,directory,presence,msg"), std::string::npos)
      << workers.output;
  const CtlRun help = RunCtl(*stack_, {"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("drain"), std::string::npos) << help.output;
}

TEST_F(CtlTest, DrainMovesRoutesAway) {
  const std::string name = UniqueName("drain");
  client::Client on_edge0 = LoggedIn(*stack_, 0, name);
  client::Client asker = Connected(*stack_, 1);
  const uint16_t port0 = static_cast<uint16_t>(stack_->edge_port(0));
  const uint16_t port1 = static_cast<uint16_t>(stack_->edge_port(1));

  const CtlRun drain = RunCtl(*stack_, {"drain", "edge0"});
  ASSERT_EQ(drain.exit_code, 0) << drain.output;
  EXPECT_NE(drain.output.find("drain: 1 sessions told to reconnect"), std::string::npos)
      << drain.output;
  // The session on edge0 is told where to go.
  const auto moved =
      WaitPushOf(on_edge0, codec::ToWire(codec::Service::kSys), codec::sys::kReconnect);
  ASSERT_TRUE(moved.has_value());
  EXPECT_EQ(moved->body.GetUint("port"), port1);
  EXPECT_EQ(moved->body.GetString("host"), "127.0.0.1");
  // Every new SYS/ROUTE, from either edge, names edge1 and lists edge0 no more.
  for (int i = 0; i < 5; ++i) {
    client::Client& via = i % 2 == 0 ? asker : on_edge0;
    auto route = via.Route();
    ASSERT_TRUE(route.ok()) << route.Describe();
    EXPECT_EQ(route.value.port, port1);
    for (const auto& e : route.value.edges) EXPECT_NE(e.port, port0);
  }
  const CtlRun status = RunCtl(*stack_, {"status"});
  EXPECT_NE(status.output.find("edge0  127.0.0.1:" + std::to_string(port0)), std::string::npos)
      << status.output;
  EXPECT_NE(status.output.find("DRAINED"), std::string::npos) << status.output;

  // Undrained, it is listed again.
  const CtlRun undrain = RunCtl(*stack_, {"undrain", "edge0"});
  ASSERT_EQ(undrain.exit_code, 0) << undrain.output;
  auto route = asker.Route();
  ASSERT_TRUE(route.ok());
  bool listed = false;
  for (const auto& e : route.value.edges) listed = listed || e.port == port0;
  EXPECT_TRUE(listed);
  EXPECT_EQ(RunCtl(*stack_, {"undrain", "edge0"}).exit_code, 3);  // not drained
}

TEST_F(CtlTest, KickClosesEverySessionOfTheUser) {
  const std::string name = UniqueName("kick");
  client::Client laptop = LoggedIn(*stack_, 0, name, "laptop");
  client::Client phone = LoggedIn(*stack_, 1, name, "phone", /*register_first=*/false);
  const std::string other_name = UniqueName("stays");
  client::Client other = LoggedIn(*stack_, 0, other_name);

  const CtlRun kick = RunCtl(*stack_, {"kick", name});
  ASSERT_EQ(kick.exit_code, 0) << kick.output;
  EXPECT_NE(kick.output.find("kick: 2 sessions kicked"), std::string::npos) << kick.output;
  for (client::Client* c : {&laptop, &phone}) {
    const auto kicked = WaitPushOf(*c, codec::ToWire(codec::Service::kAuth), codec::auth::kKicked);
    ASSERT_TRUE(kicked.has_value());
    EXPECT_EQ(kicked->body.GetString("reason"), "kicked by an administrator");
    // Then the edge closes the connection.
    const auto deadline = std::chrono::steady_clock::now() + seconds(5);
    while (!c->connection().closed() && std::chrono::steady_clock::now() < deadline) {
      c->connection().WaitPush(milliseconds(100));
    }
    EXPECT_TRUE(c->connection().closed());
  }
  // The other user is untouched; kicking a user with no session says so (also for a
  // number past any uid, which the broker takes for a name).
  EXPECT_TRUE(other.Ping().ok());
  EXPECT_EQ(RunCtl(*stack_, {"kick", name}).exit_code, 3);
  EXPECT_EQ(RunCtl(*stack_, {"kick", "99999999999999999999999"}).exit_code, 3);
  EXPECT_TRUE(other.Ping().ok());
}

TEST_F(CtlTest, BroadcastReachesEveryOnlineClient) {
  std::vector<client::Client> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(LoggedIn(*stack_, i % 2, UniqueName("bc")));
  const CtlRun bc = RunCtl(*stack_, {"broadcast", "maintenance at 18:00 UTC"});
  ASSERT_EQ(bc.exit_code, 0) << bc.output;
  EXPECT_NE(bc.output.find("broadcast: 4 sessions reached"), std::string::npos) << bc.output;
  for (client::Client& c : clients) {
    const auto notice = WaitPushOf(c, codec::ToWire(codec::Service::kSys), codec::sys::kNotice);
    ASSERT_TRUE(notice.has_value());
    EXPECT_EQ(notice->body.GetString("text"), "maintenance at 18:00 UTC");
    EXPECT_GT(notice->body.GetInt("ts").value_or(0), 0);
  }
  EXPECT_EQ(RunCtl(*stack_, {"broadcast", ""}).exit_code, 1);  // BAD_REQUEST
}

TEST(CtlCurveTest, KeyWithoutAdminRightIsRefused) {
  StackOptions options;
  options.curve = true;
  Stack stack(options);
  stack.StartBroker();
  // The control key may connect (STATS) but is no admin key.
  const bus::CurveClientKeys& k = stack.control_curve();
  char path[] = "/tmp/imbus-ctl-key-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, k.secret_key.data(), k.secret_key.size()),
            static_cast<ssize_t>(k.secret_key.size()));
  ::close(fd);
  const std::vector<std::string> curve = {"--curve-server-key", k.server_public_key,
                                          "--curve-secret-file", path};
  std::vector<std::string> args = curve;
  args.push_back("status");
  const CtlRun status = RunCtl(stack, args);
  EXPECT_EQ(status.exit_code, 0) << status.output;
  args = curve;
  args.insert(args.end(), {"broadcast", "hello"});
  const CtlRun bc = RunCtl(stack, args);
  ::unlink(path);
  EXPECT_EQ(bc.exit_code, 1) << bc.output;
  EXPECT_NE(bc.output.find("FORBIDDEN"), std::string::npos) << bc.output;
  EXPECT_TRUE(stack.broker().WaitForLog("is not an admin key", seconds(5)));
}

}  // namespace
}  // namespace imbus::testing
