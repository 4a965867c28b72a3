// The stack on a three-node Galera cluster (test/support/galera.h), under a chat load:
// the actors write through one node; kill -9 of that node, a pause of it (a hung
// machine), and a partition that leaves it alone in a minority. After each, the
// actors write through another node within seconds (or refuse while no node can
// write), every acknowledged message is on every node exactly once with the seq it
// was acknowledged with, seqs are gap-free, and the failed node rejoins and catches up.
#include <gtest/gtest.h>

#include <mysqld_error.h>

#include <memory>

#include "test/drills/drill.h"
#include "test/support/galera.h"

namespace imbus::testing {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t Num(const std::string& s) { return s.empty() ? 0 : std::stoull(s); }

class GaleraDrill : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new GaleraCluster(3);
    if (!cluster_->Start()) {
      delete cluster_;
      cluster_ = nullptr;
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(cluster_, nullptr) << "no Galera cluster (galera-4 installed?)";
    for (int i = 0; i < cluster_->size(); ++i) {
      if (!cluster_->running(i)) {
        ASSERT_TRUE(cluster_->Restart(i)) << cluster_->Logs(i);
      }
      ASSERT_TRUE(cluster_->WaitSynced(i, 3, seconds(60))) << cluster_->Logs(i);
    }
    ASSERT_TRUE(cluster_->WaitConverged(seconds(60)));
    config_ = cluster_->cluster_config();
    StackOptions o = DrillOptions(&config_);
    // A paused node does not reset connections: a statement on it gives up after this.
    o.actor_args = {"--db-timeout-s", "4"};
    stack_ = std::make_unique<Stack>(o);
    stack_->StartBroker();
    stack_->StartEdge();
    stack_->StartActor("auth");
    stack_->StartActor("msg", 2);
    stack_->StartActor("msg", 2);
    ASSERT_TRUE(WaitWorkers(*stack_, "auth", 1));
    ASSERT_TRUE(WaitWorkers(*stack_, "msg", 4));
    load_ = std::make_unique<ChatLoad>(*stack_, config_, ChatLoadOptions{.users = 6});
    load_->Start();
    ASSERT_TRUE(load_->WaitProgress(30, seconds(30))) << "no load";
  }

  void TearDown() override {
    if (HasFailure() && stack_) {
      std::cerr << stack_->Logs();
      for (int i = 0; i < cluster_->size(); ++i) {
        std::cerr << "===== galera node " << i << "\n" << cluster_->Logs(i);
      }
    }
    load_.reset();
    stack_.reset();
    if (cluster_ != nullptr) {
      for (int i = 0; i < cluster_->size(); ++i) cluster_->Resume(i);
    }
  }

  // Transactions each running node committed as the origin (wsrep_local_commits).
  std::vector<uint64_t> LocalCommits() const {
    std::vector<uint64_t> out;
    for (int i = 0; i < cluster_->size(); ++i) {
      out.push_back(cluster_->running(i) ? Num(cluster_->Status(i, "wsrep_local_commits")) : 0);
    }
    return out;
  }

  // The node the actors write through: while the load runs, the only one whose own
  // commits grow (one writer for the whole stack). -1 if none, -2 if several.
  int Writer() {
    const std::vector<uint64_t> before = LocalCommits();
    EXPECT_TRUE(load_->WaitProgress(20, seconds(30))) << "no progress";
    const std::vector<uint64_t> after = LocalCommits();
    int writer = -1;
    for (int i = 0; i < cluster_->size(); ++i) {
      if (!cluster_->running(i) || after[i] <= before[i]) continue;
      if (writer != -1) return -2;
      writer = i;
    }
    return writer;
  }

  // Seconds from now until the load has 10 more acknowledgements.
  double SecondsToProgress(seconds timeout) {
    const auto start = Clock::now();
    if (!load_->WaitProgress(10, timeout)) return -1;
    return std::chrono::duration<double>(Clock::now() - start).count();
  }

  // Stops the load; every acknowledged message is on every running node once, with
  // its seq, gap-free, and the recipients see them all.
  void ExpectNothingLost(const char* fault) {
    load_->Stop();
    const std::vector<Acked> acked = load_->acked();
    std::cerr << fault << ": " << acked.size() << " acknowledged, " << load_->failures()
              << " attempts retried\n";
    // The load has stopped: once every node has applied the same last transaction,
    // each holds everything that was ever committed.
    ASSERT_TRUE(cluster_->WaitConverged(seconds(60))) << "the nodes did not converge";
    for (int i = 0; i < cluster_->size(); ++i) {
      if (!cluster_->running(i)) continue;
      SCOPED_TRACE("node " + std::to_string(i));
      ExpectStoredExactlyOnce(*stack_, cluster_->node_config(i), acked);
    }
    ExpectRecipientsSeeAll(*stack_, load_->users(), acked);
  }

  static inline GaleraCluster* cluster_ = nullptr;
  DbConfig config_;
  std::unique_ptr<Stack> stack_;
  std::unique_ptr<ChatLoad> load_;
};

TEST_F(GaleraDrill, WriterKilledActorsMoveOnNothingLostNodeRejoins) {
  const int writer = Writer();
  ASSERT_EQ(writer, 0) << "the first healthy node in --db-hosts takes the writes";
  cluster_->Kill(writer);  // kill -9 with commits in flight
  const double moved_s = SecondsToProgress(seconds(30));
  ASSERT_GE(moved_s, 0) << "no progress after the writer was killed";
  std::cerr << "writer kill -9: load progressed again after " << moved_s << " s\n";
  EXPECT_EQ(Writer(), 1) << "the actors move to the next node in order";

  // The killed node comes back by IST and catches up; the actors move back to it.
  const auto rejoin_start = Clock::now();
  ASSERT_TRUE(cluster_->Restart(writer)) << cluster_->Logs(writer);
  std::cerr << "killed node rejoined in "
            << std::chrono::duration<double>(Clock::now() - rejoin_start).count() << " s\n";
  // Each actor process probes the first node every Db::kFailBackPeriod (5 s).
  int now_writer = -1;
  for (const auto until = Clock::now() + seconds(30); Clock::now() < until && now_writer != 0;) {
    now_writer = Writer();
  }
  EXPECT_EQ(now_writer, 0) << "the actors go back to the first node once it is Synced";
  ExpectNothingLost("writer kill -9");
}

TEST_F(GaleraDrill, WriterPausedActorsMoveOnNothingLost) {
  ASSERT_EQ(Writer(), 0);
  cluster_->Pause(0);  // hung: connections stay open, nothing answers
  const double moved_s = SecondsToProgress(seconds(40));
  ASSERT_GE(moved_s, 0) << "no progress while the writer was paused";
  std::cerr << "writer paused: load progressed again after " << moved_s << " s\n";
  EXPECT_EQ(Writer(), 1);
  cluster_->Resume(0);
  ASSERT_TRUE(cluster_->WaitConverged(seconds(60), /*same_commit=*/false)) << cluster_->Logs(0);
  ExpectNothingLost("writer paused");
}

TEST_F(GaleraDrill, WriterInMinorityRefusesWritesActorsNeverWriteThere) {
  ASSERT_EQ(Writer(), 0);
  // Nodes 1 and 2 stop answering: node 0 is alone, a minority of one in three, and
  // leaves the primary component while staying up and reachable.
  cluster_->Pause(1);
  cluster_->Pause(2);
  const auto deadline = Clock::now() + seconds(30);
  while (cluster_->Status(0, "wsrep_cluster_status") == "Primary" && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_NE(cluster_->Status(0, "wsrep_cluster_status"), "Primary");
  EXPECT_EQ(cluster_->Status(0, "wsrep_ready"), "OFF");
  // The minority refuses writes: no acknowledgement can come from it.
  EXPECT_EQ(cluster_->Exec(0, "CREATE DATABASE IF NOT EXISTS imbus_minority_probe"),
            ER_UNKNOWN_COM_ERROR);
  const uint64_t commits = Num(cluster_->Status(0, "wsrep_local_commits"));
  std::this_thread::sleep_for(seconds(1));  // requests in flight fail
  const size_t acked_in_minority = load_->acked_count();
  std::this_thread::sleep_for(seconds(3));
  EXPECT_EQ(load_->acked_count(), acked_in_minority) << "acknowledged while no node could write";
  EXPECT_EQ(Num(cluster_->Status(0, "wsrep_local_commits")), commits);
  EXPECT_GT(load_->failures(), 0);

  cluster_->Resume(1);
  cluster_->Resume(2);
  const double back_s = SecondsToProgress(seconds(60));
  ASSERT_GE(back_s, 0) << "no progress after the partition healed";
  std::cerr << "minority partition healed: load progressed again after " << back_s << " s\n";
  ExpectNothingLost("writer in a minority");
}

}  // namespace
}  // namespace imbus::testing
