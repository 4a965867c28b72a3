// BinaryStar, the state machine of a broker pair: every transition of the pattern,
// and the split-brain rule (silence alone never makes a passive broker active).
#include "broker/binary_star.h"

#include <gtest/gtest.h>

namespace imbus::broker {
namespace {

using std::chrono::milliseconds;
using Clock = BinaryStar::Clock;
constexpr milliseconds kTimeout{1000};

TEST(BinaryStarTest, PrimaryGoesActiveWhenItHearsTheBackupAndTheBackupStandsBy) {
  const auto t0 = Clock::now();
  BinaryStar primary(true, kTimeout, t0);
  BinaryStar backup(false, kTimeout, t0);
  EXPECT_EQ(primary.state(), HaState::kPrimary);
  EXPECT_EQ(backup.state(), HaState::kBackup);
  EXPECT_FALSE(backup.OnPeerState(primary.state(), t0));  // both waiting: nothing yet
  EXPECT_TRUE(primary.OnPeerState(backup.state(), t0));
  EXPECT_EQ(primary.state(), HaState::kActive);
  EXPECT_TRUE(backup.OnPeerState(primary.state(), t0));
  EXPECT_EQ(backup.state(), HaState::kPassive);
  EXPECT_TRUE(primary.OnClientRequest(t0));
  EXPECT_FALSE(backup.OnClientRequest(t0 + milliseconds(10)));
}

TEST(BinaryStarTest, ABackupAloneNeverServes) {
  const auto t0 = Clock::now();
  BinaryStar backup(false, kTimeout, t0);
  EXPECT_FALSE(backup.OnClientRequest(t0));
  EXPECT_FALSE(backup.OnClientRequest(t0 + 10 * kTimeout));
  EXPECT_EQ(backup.state(), HaState::kBackup);
}

TEST(BinaryStarTest, APrimaryAloneServesOnlyAfterWaitingForTheBackup) {
  const auto t0 = Clock::now();
  BinaryStar primary(true, kTimeout, t0);
  EXPECT_FALSE(primary.OnClientRequest(t0 + milliseconds(100)));
  EXPECT_TRUE(primary.OnClientRequest(t0 + kTimeout));
  EXPECT_EQ(primary.state(), HaState::kActive);
}

TEST(BinaryStarTest, FailoverNeedsTheActiveSilentAndAClient) {
  const auto t0 = Clock::now();
  BinaryStar backup(false, kTimeout, t0);
  backup.OnPeerState(HaState::kActive, t0);
  ASSERT_EQ(backup.state(), HaState::kPassive);
  // Heard recently: a client is turned away.
  EXPECT_FALSE(backup.OnClientRequest(t0 + kTimeout / 2));
  // Silent, but no client came: still passive (a partition between the brokers only).
  for (int i = 1; i <= 10; ++i) {
    backup.OnPeerState(HaState::kActive, t0 + i * milliseconds(100));
    EXPECT_EQ(backup.state(), HaState::kPassive);
  }
  const auto last_heard = t0 + milliseconds(1000);
  EXPECT_EQ(backup.state(), HaState::kPassive);
  EXPECT_FALSE(backup.OnClientRequest(last_heard + kTimeout - milliseconds(1)));
  // Silent for the timeout and a client came: take over.
  EXPECT_TRUE(backup.OnClientRequest(last_heard + kTimeout));
  EXPECT_EQ(backup.state(), HaState::kActive);
  EXPECT_NE(backup.reason().find("failover"), std::string::npos);
}

TEST(BinaryStarTest, ARestartedPrimaryStandsByWhileTheBackupServes) {
  const auto t0 = Clock::now();
  BinaryStar primary(true, kTimeout, t0);
  EXPECT_TRUE(primary.OnPeerState(HaState::kActive, t0));
  EXPECT_EQ(primary.state(), HaState::kPassive);
  // The second failover goes back to it the same way.
  EXPECT_TRUE(primary.OnClientRequest(t0 + kTimeout));
  EXPECT_EQ(primary.state(), HaState::kActive);
}

TEST(BinaryStarTest, APassiveBrokerTakesOverWhenTheOtherRestarts) {
  const auto t0 = Clock::now();
  BinaryStar backup(false, kTimeout, t0);
  backup.OnPeerState(HaState::kActive, t0);
  ASSERT_EQ(backup.state(), HaState::kPassive);
  EXPECT_TRUE(backup.OnPeerState(HaState::kPrimary, t0 + milliseconds(10)));
  EXPECT_EQ(backup.state(), HaState::kActive);
}

TEST(BinaryStarTest, TwoActivesTheBackupYieldsTwoPassivesThePrimaryServes) {
  const auto t0 = Clock::now();
  BinaryStar primary(true, kTimeout, t0);
  BinaryStar backup(false, kTimeout, t0);
  ASSERT_TRUE(primary.OnClientRequest(t0 + kTimeout));
  backup.OnPeerState(HaState::kActive, t0);
  ASSERT_TRUE(backup.OnClientRequest(t0 + 3 * kTimeout));
  EXPECT_FALSE(primary.OnPeerState(HaState::kActive, t0 + 3 * kTimeout));
  EXPECT_EQ(primary.state(), HaState::kActive);
  EXPECT_TRUE(backup.OnPeerState(HaState::kActive, t0 + 3 * kTimeout));
  EXPECT_EQ(backup.state(), HaState::kPassive);

  BinaryStar p2(true, kTimeout, t0);
  p2.OnPeerState(HaState::kActive, t0);
  ASSERT_EQ(p2.state(), HaState::kPassive);
  EXPECT_TRUE(p2.OnPeerState(HaState::kPassive, t0));
  EXPECT_EQ(p2.state(), HaState::kActive);
}

}  // namespace
}  // namespace imbus::broker
