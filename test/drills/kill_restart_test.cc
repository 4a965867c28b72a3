// Drill 1: kill -9 each process kind in turn under a client load, restart it, and
// show the stack serves again and no acknowledged message is lost or duplicated.
#include "test/drills/drill.h"

namespace imbus::testing {
namespace {

class KillRestartDrill : public DrillTest {
 protected:
  static void SetUpTestSuite() { StartPrivateDb(); }  // MariaDbKilledHard... kills it
};

TEST_F(KillRestartDrill, EdgeKilledClientsResumeOnTheRestartedEdge) {
  StartStack();
  StartLoad();
  stack_->RestartEdge(0);  // SIGKILL, then the same port again
  ExpectRecoveredAndNothingLost("edge kill -9");
  EXPECT_GT(load_->resumes(), 0) << "clients should come back with RESUME";
  EXPECT_EQ(load_->relogins(), 0) << "RESUME tokens must survive an edge crash";
}

TEST_F(KillRestartDrill, BrokerKilledAndRestarted) {
  StartStack();
  Pair pair(*stack_);
  StartLoad();
  stack_->broker().Kill();
  stack_->StartBroker();
  ExpectRecoveredAndNothingLost("broker kill -9");
  EXPECT_GT(load_->failures(), 0) << "the load should have felt the fault";
  pair.ExpectPushArrives("after-broker-kill");  // the edge re-bound its sessions
}

TEST_F(KillRestartDrill, MsgActorKilledWithRequestsInFlightAndRestarted) {
  StartStack();
  StartLoad();
  const size_t broker_log = stack_->broker().LogSize();
  stack_->actor(msg_actors_[0]).Kill();
  stack_->StartActor("msg");
  ExpectRecoveredAndNothingLost("msg actor kill -9");
  // The kill met requests: those the worker held were answered UNAVAILABLE (the load
  // retried them), or, when it held none, the broker's next batch to it failed and
  // went to the queue, where the restarted worker took it (no client saw a failure).
  const bool handed_on =
      stack_->broker().WaitForLog("(unreachable)", milliseconds(0), broker_log).has_value();
  EXPECT_TRUE(load_->failures() > 0 || handed_on) << "the kill met no request";
}

TEST_F(KillRestartDrill, AuthActorKilledAndRestarted) {
  StartStack();
  StartLoad();
  stack_->actor(0).Kill();  // "auth": new logins fail until it is back
  std::string why;
  EXPECT_FALSE(ServesAgain(stack_->edge_port(0), milliseconds(0), &why));
  stack_->StartActor("auth");
  ExpectRecoveredAndNothingLost("auth actor kill -9");
}

TEST_F(KillRestartDrill, MariaDbKilledHardAndRestartedOnItsData) {
  StartStack();
  StartLoad();
  server_->Kill();  // SIGKILL: InnoDB crash recovery on the next start
  std::this_thread::sleep_for(milliseconds(1000));
  ASSERT_TRUE(server_->Start());
  ExpectRecoveredAndNothingLost("MariaDB kill -9");
  EXPECT_GT(load_->failures(), 0) << "the load should have felt the fault";
}

}  // namespace
}  // namespace imbus::testing
