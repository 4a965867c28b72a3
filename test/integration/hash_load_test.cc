// Password hashing under load: 100 REGISTERs at once against an actor at the
// production (interactive) Argon2id cost, as in the issue where 75 of them came back
// UNAVAILABLE because the hashing workers sent no heartbeat for over 3 s. Checks that
// every registration succeeds, that the broker never loses a worker meanwhile, and
// that a DIRECTORY request served by the same workers answers while the hashes run.
#include <poll.h>

#include <chrono>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "client/directory_api.h"
#include "codec/body.h"
#include "codec/commands.h"
#include "test/integration/stack_util.h"

namespace imbus::testing {
namespace {

using std::chrono::seconds;

constexpr int kRegistrations = 100;
constexpr const char* kPassword = "password1";

std::string RegisterBody(const std::string& name) {
  codec::MapWriter w(2);
  w.Key("name").Str(name);
  w.Key("password").Str(kPassword);
  return w.Finish();
}

// Connections with nothing to read yet: their REGISTER is still being worked on.
int CountUnanswered(std::vector<client::Client>& clients) {
  std::vector<pollfd> fds;
  for (client::Client& c : clients) fds.push_back({c.connection().fd(), POLLIN, 0});
  ::poll(fds.data(), fds.size(), 0);
  int unanswered = 0;
  for (const pollfd& p : fds) unanswered += (p.revents & POLLIN) == 0 ? 1 : 0;
  return unanswered;
}

TEST(HashLoadTest, ConcurrentRegistrationsAtDefaultCostAllSucceed) {
  StackOptions o;
  // 100 full-cost hashes take seconds on a small shared machine. Broker and edge
  // timeouts are capacity settings, not what this test is about: keep them out of
  // the way so a failure here means a starved heartbeat or a refused request.
  o.broker_args = {"--request-timeout-ms", "60000"};
  o.request_timeout_ms = 60000;
  Stack stack(o);
  stack.StartBroker();
  stack.StartEdge();
  // The actor's defaults: 2 worker threads, interactive hash cost. Presence too, so
  // that the broker's own session events find a worker (no UNAVAILABLE anywhere).
  stack.StartActor("auth,directory,presence", 2, Stack::kDefaultPwhashCost);
  ASSERT_TRUE(WaitWorkers(stack, "auth", 2)) << stack.Logs();

  // Logged in before the load, to ask DIRECTORY during it.
  client::Client observer = Connected(stack, 0, seconds(60));
  const std::string observer_name = UniqueName("observer");
  const auto reg = observer.Register(observer_name, kPassword);
  ASSERT_TRUE(reg.ok()) << reg.Describe() << "\n" << stack.Logs();
  const auto login = observer.Login(observer_name, kPassword);
  ASSERT_TRUE(login.ok()) << login.Describe() << "\n" << stack.Logs();

  const size_t broker_log_from = stack.broker().LogSize();
  const auto start = std::chrono::steady_clock::now();
  std::vector<client::Client> clients;
  clients.reserve(kRegistrations);
  for (int i = 0; i < kRegistrations; ++i) clients.push_back(Connected(stack, 0, seconds(60)));
  std::vector<uint32_t> seqs;
  for (client::Client& c : clients) {
    const uint32_t seq =
        c.connection().Send(codec::ToWire(codec::Service::kAuth), codec::auth::kRegister,
                            RegisterBody(UniqueName("load")));
    ASSERT_NE(seq, 0u) << c.connection().close_reason();
    seqs.push_back(seq);
  }

  // Another service on the same workers answers meanwhile, not after the hashes.
  for (int i = 0; i < 3; ++i) {
    const auto user = client::GetUser(observer, reg.value);
    EXPECT_TRUE(user.ok()) << user.Describe();
    EXPECT_EQ(user.value.name, observer_name);
  }
  const int unanswered = CountUnanswered(clients);
  EXPECT_GT(unanswered, 0) << "all registrations were answered before DIRECTORY was";
  const auto directory_done = std::chrono::steady_clock::now();

  int ok = 0;
  std::map<int, int> failures;  // code -> count
  std::string first_failure;
  for (int i = 0; i < kRegistrations; ++i) {
    const client::Response r = clients[i].connection().WaitResponse(seqs[i], seconds(90));
    if (r.code == 0) {
      ++ok;
      continue;
    }
    ++failures[r.code];
    if (first_failure.empty()) first_failure = r.Describe();
  }
  const auto ms = [start](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t - start).count();
  };
  std::cout << "3 DIRECTORY answers after " << ms(directory_done) << " ms (" << unanswered
            << " registrations pending); " << kRegistrations << " registrations after "
            << ms(std::chrono::steady_clock::now()) << " ms\n";
  std::string counts;
  for (const auto& [code, n] : failures) {
    counts += " " + std::string(codec::CodeName(code)) + "=" + std::to_string(n);
  }
  EXPECT_EQ(ok, kRegistrations) << "failures:" << counts << " (first: " << first_failure << ")";

  // The broker heard from its workers throughout.
  const std::string broker_log = stack.broker().Log().substr(broker_log_from);
  EXPECT_EQ(broker_log.find("worker died"), std::string::npos) << broker_log;
  EXPECT_EQ(broker_log.find("worker left"), std::string::npos) << broker_log;
  codec::StatsMeta stats;
  ASSERT_TRUE(BrokerStats(stack, &stats));
  EXPECT_EQ(stats.unavailable, 0u);
  EXPECT_EQ(stats.workers.size(), 2u);
  if (HasFailure()) std::cerr << stack.Logs();
}

}  // namespace
}  // namespace imbus::testing
