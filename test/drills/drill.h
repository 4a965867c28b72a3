// Internal to the fault drills. DrillTest: a whole stack (broker, one edge, an auth
// and a msg actor) with short heartbeats on the tests' MariaDB (a private one where a
// drill kills it), a client load (ChatLoad) around an injected fault, and the checks
// every drill ends with: the stack serves again within a bounded time, every
// acknowledged message is stored once and seen by its recipients, gap-free seqs.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>

#include <functional>
#include <memory>

#include "test/integration/chat_load.h"

namespace imbus::testing {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Short intervals so a drill takes seconds: a peer silent for 3 × 250 ms is dead.
inline StackOptions DrillOptions(const DbConfig* db) {
  StackOptions o;
  o.heartbeat_ms = 250;
  o.request_timeout_ms = 4000;
  o.queue_timeout_ms = 2000;
  o.idle_timeout_s = 30;
  o.db = db;
  return o;
}

class DrillTest : public ::testing::Test {
 protected:
  // A MariaDB of the suite's own, for drills that kill it (KillRestartDrill); the
  // others use the tests' shared one. Retried: on a loaded machine a fresh server
  // can fail to come up once.
  static void StartPrivateDb() {
    for (int attempt = 0; attempt < 3 && server_ == nullptr; ++attempt) {
      server_ = new MariaDbServer();
      if (!server_->Start()) {
        delete server_;
        server_ = nullptr;
      }
    }
    ASSERT_NE(server_, nullptr) << "no private MariaDB";
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  // Starts the stack; call first in each test (after adjusting options_ if needed).
  void StartStack(int msg_actors = 1) {
    config_ = server_ != nullptr ? server_->config() : SharedMariaDb();
    options_.db = &config_;
    stack_ = std::make_unique<Stack>(options_);
    stack_->StartBroker();
    stack_->StartEdge();
    stack_->StartActor("auth");
    for (int i = 0; i < msg_actors; ++i) msg_actors_.push_back(stack_->StartActor("msg"));
    ASSERT_TRUE(WaitWorkers(*stack_, "auth", 1));
    ASSERT_TRUE(WaitWorkers(*stack_, "msg", static_cast<size_t>(msg_actors)));
  }

  void TearDown() override {
    if (HasFailure() && stack_) std::cerr << stack_->Logs();
    load_.reset();
    stack_.reset();
    if (server_ != nullptr && !server_->running()) (void)server_->Start();  // next test
  }

  // Starts the load and waits until it runs.
  void StartLoad(ChatLoadOptions o = {}) {
    load_ = std::make_unique<ChatLoad>(*stack_, config_, o);
    load_->Start();
    ASSERT_TRUE(load_->WaitProgress(20, seconds(30))) << "no load before the fault";
  }

  // After the fault: the load makes progress again, a new user is served, then the
  // load stops and every acknowledged message is checked.
  void ExpectRecoveredAndNothingLost(const char* fault) {
    EXPECT_TRUE(load_->WaitProgress(20, seconds(40))) << "no progress after " << fault;
    std::string why;
    EXPECT_TRUE(ServesAgain(stack_->edge_port(0), seconds(30), &why))
        << "not serving after " << fault << ": " << why;
    load_->Stop();
    const std::vector<Acked> acked = load_->acked();
    std::cerr << fault << ": " << acked.size() << " acknowledged, " << load_->failures()
              << " attempts retried, " << load_->resumes() << " RESUMEs, " << load_->relogins()
              << " re-logins\n";
    ExpectStoredExactlyOnce(*stack_, config_, acked);
    ExpectRecipientsSeeAll(*stack_, load_->users(), acked);
  }

  static inline MariaDbServer* server_ = nullptr;
  DbConfig config_;
  StackOptions options_ = DrillOptions(nullptr);
  std::unique_ptr<Stack> stack_;
  std::vector<size_t> msg_actors_;
  std::unique_ptr<ChatLoad> load_;
};

// Two users logged in before a fault, kept idle through it: afterwards one sends the
// other a message that must arrive as a push, which needs the old session to be
// known to the (restarted or resumed) broker again: no zombie sessions.
class Pair {
 public:
  explicit Pair(Stack& stack)
      : stack_(stack),
        a_(RegisterUser(stack, "pa")),
        b_(RegisterUser(stack, "pb")),
        ca_(LoggedIn(stack, a_)),
        cb_(LoggedIn(stack, b_)) {}

  void ExpectPushArrives(const std::string& cmid) {
    auto r = SendUntilOk(stack_, ca_, a_, false, b_.uid, cmid, "after the fault", seconds(30));
    ASSERT_TRUE(r.ok()) << r.Describe();
    for (;;) {
      auto m = WaitMessage(cb_, seconds(15));
      ASSERT_TRUE(m.has_value()) << "the idle session got no push for " << cmid;
      if (m->cmid == cmid) return;
    }
  }

 private:
  Stack& stack_;
  TestUser a_, b_;
  client::Client ca_, cb_;
};

}  // namespace imbus::testing
