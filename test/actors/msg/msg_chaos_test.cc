// MSG guarantees with several workers and under failure: 3 msg workers and 20
// concurrent senders in one group end with one gap-free order that every member
// sees; then, under a running load, a msg worker is killed, MariaDB restarted and the
// broker restarted, and every message a sender saw acknowledged is stored exactly
// once with the seq it was acknowledged with (senders retry errors with the same cmid).
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "test/integration/chat_load.h"

namespace imbus::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class MsgChaosTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start());
    config_ = server_.config();
    StackOptions o;
    o.request_timeout_ms = 5000;
    o.queue_timeout_ms = 3000;
    o.db = &config_;
    stack_ = std::make_unique<Stack>(o);
    stack_->StartBroker();
    stack_->StartEdge();
    stack_->StartActor("auth");
    ASSERT_TRUE(WaitWorkers(*stack_, "auth", 1));
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << stack_->Logs();
    stack_.reset();
  }

  // Every acknowledged message is stored exactly once, with its acknowledged seq,
  // and every conversation is gap-free.
  void CheckStored(const std::vector<Acked>& acked) {
    ExpectStoredExactlyOnce(*stack_, config_, acked);
  }

  MariaDbServer server_;
  DbConfig config_;
  std::unique_ptr<Stack> stack_;
};

TEST_F(MsgChaosTest, ThreeWorkersTwentySendersOneGapFreeOrder) {
  for (int i = 0; i < 3; ++i) stack_->StartActor("msg");
  ASSERT_TRUE(WaitWorkers(*stack_, "msg", 3));
  constexpr int kSenders = 20, kEach = 15;
  std::vector<TestUser> users;
  std::vector<uint64_t> uids;
  for (int i = 0; i < kSenders; ++i) {
    users.push_back(RegisterUser(*stack_, "s"));
    uids.push_back(users.back().uid);
  }
  actors::Db db = StackDb(*stack_, config_);
  const uint64_t gid = CreateGroupInDb(db, uids);

  std::mutex mu;
  std::vector<Acked> acked;
  std::vector<std::thread> threads;
  for (int i = 0; i < kSenders; ++i) {
    threads.emplace_back([&, i] {
      client::Client c = LoggedIn(*stack_, users[static_cast<size_t>(i)]);
      for (int k = 0; k < kEach; ++k) {
        const std::string cmid = "s" + std::to_string(i) + "-" + std::to_string(k);
        auto r = SendUntilOk(*stack_, c, users[static_cast<size_t>(i)], true, gid, cmid, cmid);
        if (!r.ok()) {
          ADD_FAILURE() << cmid << ": " << r.Describe();
          continue;
        }
        std::lock_guard<std::mutex> lock(mu);
        acked.push_back({uids[static_cast<size_t>(i)], cmid, r.value.conv, r.value.seq});
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(acked.size(), static_cast<size_t>(kSenders * kEach));
  std::set<uint64_t> seqs;
  for (const Acked& a : acked) seqs.insert(a.seq);
  EXPECT_EQ(seqs.size(), acked.size());  // no two acks share a seq
  EXPECT_EQ(*seqs.begin(), 1u);
  EXPECT_EQ(*seqs.rbegin(), acked.size());  // 1..N: gap-free
  CheckStored(acked);

  // Three members read the whole conversation: the same order, matching the acks.
  std::map<uint64_t, std::string> by_seq;
  for (const Acked& a : acked) by_seq[a.seq] = a.cmid;
  std::vector<std::vector<std::string>> views;
  for (size_t member : {size_t{0}, size_t{7}, size_t{19}}) {
    client::Client c = LoggedIn(*stack_, users[member]);
    std::vector<std::string> view;
    uint64_t before = 0;
    for (;;) {
      auto h = client::History(c, "g:" + std::to_string(gid), before, 100);
      ASSERT_TRUE(h.ok()) << h.Describe();
      if (h.value.empty()) break;
      for (const client::Message& m : h.value) {
        EXPECT_EQ(m.cmid, by_seq[m.seq]);
        view.push_back(m.cmid);
      }
      before = h.value.back().seq;
    }
    EXPECT_EQ(view.size(), acked.size());
    views.push_back(std::move(view));
  }
  EXPECT_EQ(views[0], views[1]);
  EXPECT_EQ(views[0], views[2]);
}

TEST_F(MsgChaosTest, AcknowledgedMessagesSurviveWorkerKillDbRestartBrokerRestart) {
  size_t worker = stack_->StartActor("msg");
  stack_->StartActor("msg");
  ASSERT_TRUE(WaitWorkers(*stack_, "msg", 2));
  constexpr int kSenders = 6;
  std::vector<TestUser> users;
  std::vector<uint64_t> uids;
  for (int i = 0; i < kSenders; ++i) {
    users.push_back(RegisterUser(*stack_, "c"));
    uids.push_back(users.back().uid);
  }
  actors::Db db = StackDb(*stack_, config_);
  const uint64_t gid = CreateGroupInDb(db, uids);
  db.Disconnect();

  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<size_t> acked_count{0};
  std::mutex mu;
  std::vector<Acked> acked;
  std::vector<std::thread> threads;
  for (int i = 0; i < kSenders; ++i) {
    threads.emplace_back([&, i] {
      const TestUser& me = users[static_cast<size_t>(i)];
      client::Client c = LoggedIn(*stack_, me, {}, seconds(10));
      for (int k = 0; !stop.load(); ++k) {
        const std::string cmid = "c" + std::to_string(i) + "-" + std::to_string(k);
        // Alternate the group and a direct conversation with the next sender.
        const bool group = k % 2 == 0;
        const uint64_t to = group ? gid : uids[static_cast<size_t>((i + 1) % kSenders)];
        int failed = 0;
        auto r = SendUntilOk(*stack_, c, me, group, to, cmid, "load " + cmid, seconds(60), &failed);
        failures += failed;
        if (!r.ok()) {
          ADD_FAILURE() << cmid << " never acknowledged: " << r.Describe();
          return;
        }
        std::lock_guard<std::mutex> lock(mu);
        acked.push_back({me.uid, cmid, r.value.conv, r.value.seq});
        acked_count = acked.size();
      }
    });
  }
  auto progress = [&](const char* phase) {
    const size_t before = acked_count.load();
    const auto deadline = std::chrono::steady_clock::now() + seconds(30);
    while (acked_count.load() < before + 20 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(50));
    }
    EXPECT_GE(acked_count.load(), before + 20) << "no progress after " << phase;
  };
  progress("start");
  stack_->actor(worker).Kill();  // kill -9 with requests in flight
  worker = stack_->StartActor("msg");
  progress("msg worker killed");
  server_.Stop();
  std::this_thread::sleep_for(milliseconds(1500));
  ASSERT_TRUE(server_.Start());
  progress("MariaDB restarted");
  stack_->broker().Kill();
  stack_->StartBroker();
  progress("broker restarted");
  stop = true;
  for (std::thread& t : threads) t.join();
  std::cerr << "acknowledged " << acked.size() << " messages; " << failures.load()
            << " failed attempts were retried with the same cmid\n";
  EXPECT_GT(failures.load(), 0);  // the faults were felt (and survived)
  CheckStored(acked);
}

// Ownership moves while conversations are hot: the broker routes every SEND of a
// conversation to the msg worker owning it (which assigns seqs from memory), and
// adding and killing workers moves conversations between owners with sends in
// flight, and back to owners whose tails went stale meanwhile. A stale owner
// collides on the messages' keys and stores again from the table: every
// acknowledged message is stored once, with its acknowledged seq, and every
// conversation, the hot group most of all, stays gap-free.
TEST_F(MsgChaosTest, OwnershipMovesKeepAHotConversationGapFree) {
  std::vector<size_t> workers{stack_->StartActor("msg", 2), stack_->StartActor("msg", 2)};
  ASSERT_TRUE(WaitWorkers(*stack_, "msg", 4));  // two threads each
  ChatLoadOptions options;
  options.users = 12;  // every other message goes to the one group: hot
  options.cmid_prefix = "H";
  ChatLoad load(*stack_, config_, options);
  load.Start();
  const size_t broker_log = stack_->broker().LogSize();
  auto progress = [&](const char* phase) {
    EXPECT_TRUE(load.WaitProgress(60, seconds(30))) << "no progress after " << phase;
  };
  progress("start");
  // A joiner takes a share of the 13 hot conversations (the group and 12 direct
  // ones); when it dies they go back to owners whose tails are now stale.
  workers.push_back(stack_->StartActor("msg", 2));
  progress("a third worker joined");
  stack_->actor(workers[2]).Kill();  // kill -9, sends in flight
  progress("the joiner killed");
  workers.push_back(stack_->StartActor("msg", 2));
  progress("a fourth worker joined");
  stack_->actor(workers[0]).Kill();
  progress("the first worker killed");
  workers.push_back(stack_->StartActor("msg", 2));
  progress("a fifth worker joined");
  stack_->actor(workers[3]).Kill();
  progress("the fourth worker killed");
  load.Stop();

  const std::vector<Acked> acked = load.acked();
  size_t in_group = 0;
  for (const Acked& a : acked) in_group += a.conv == "g:" + std::to_string(load.gid());
  std::cerr << "acknowledged " << acked.size() << " messages (" << in_group
            << " in the hot group); " << load.failures() << " failed attempts retried\n";
  EXPECT_GT(in_group, 150u);
  // The kills were felt: requests a killed worker held were answered UNAVAILABLE
  // and retried, or, for a worker killed between requests, the broker's next batch
  // to it failed and went to another worker (no client saw a failure then; it
  // happened for all three kills in 1 run of about 20 under a CPU hog).
  const bool handed_on =
      stack_->broker().WaitForLog("(unreachable)", milliseconds(0), broker_log).has_value();
  EXPECT_TRUE(load.failures() > 0 || handed_on) << "no kill met a request";
  CheckStored(acked);
}

}  // namespace
}  // namespace imbus::testing
