// Per-user limits of the broker on a fake clock: both buckets, the retry time, the
// bounded and self-cleaning table.
#include "broker/user_limits.h"

#include <gtest/gtest.h>

namespace imbus::broker {
namespace {

using std::chrono::milliseconds;
using Clock = UserLimits::Clock;
const Clock::time_point kT0 = Clock::time_point() + std::chrono::hours(1);

UserLimitOptions Opts(double rate, double burst, double send_rate, double send_burst) {
  UserLimitOptions o;
  o.requests = {rate, burst};
  o.sends = {send_rate, send_burst};
  return o;
}

TEST(UserLimitsTest, RequestsAreLimitedPerUser) {
  UserLimits l(Opts(10, 2, 0, 0));
  EXPECT_TRUE(l.Take(7, false, kT0).allowed());
  EXPECT_TRUE(l.Take(7, false, kT0).allowed());
  const UserLimits::Verdict v = l.Take(7, false, kT0);
  EXPECT_EQ(v.refusal, UserLimits::Refusal::kRequests);
  EXPECT_EQ(v.retry_ms, 100);
  EXPECT_TRUE(l.Take(8, false, kT0).allowed());  // another user
  EXPECT_TRUE(l.Take(7, false, kT0 + milliseconds(100)).allowed());
}

TEST(UserLimitsTest, SendsHaveTheirOwnBucketAndRefusalsTakeNothing) {
  UserLimits l(Opts(100, 10, 1, 2));
  EXPECT_TRUE(l.Take(1, true, kT0).allowed());
  EXPECT_TRUE(l.Take(1, true, kT0).allowed());
  const UserLimits::Verdict v = l.Take(1, true, kT0);
  EXPECT_EQ(v.refusal, UserLimits::Refusal::kSends);
  EXPECT_EQ(v.retry_ms, 1000);
  // Other requests still pass: 2 sends + 1 refused took 2 of the 10 request tokens.
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(l.Take(1, false, kT0).allowed()) << i;
  EXPECT_EQ(l.Take(1, false, kT0).refusal, UserLimits::Refusal::kRequests);
  // A second later both buckets have tokens again.
  EXPECT_EQ(l.Take(1, true, kT0 + milliseconds(1000)).refusal, UserLimits::Refusal::kNone);
}

TEST(UserLimitsTest, IdleBucketsAreEvictedAndTheTableIsBounded) {
  UserLimitOptions o = Opts(10, 10, 0, 0);  // refills in 1 s
  o.max_users = 100;
  UserLimits l(o);
  for (uint64_t uid = 1; uid <= 1000; ++uid) ASSERT_TRUE(l.Take(uid, false, kT0).allowed());
  EXPECT_EQ(l.size(), 100u);
  EXPECT_EQ(l.Evict(kT0 + milliseconds(500), 1000), 0u);  // not full yet
  EXPECT_EQ(l.Evict(kT0 + milliseconds(1000), 1000), 100u);
  EXPECT_EQ(l.size(), 0u);
  // Taking also cleans up a little: a steady stream of new users stays small.
  for (uint64_t uid = 1; uid <= 1000; ++uid) {
    ASSERT_TRUE(
        l.Take(uid, false, kT0 + std::chrono::seconds(static_cast<int64_t>(uid))).allowed());
  }
  EXPECT_LE(l.size(), 2u);
}

TEST(UserLimitsTest, DisabledKeepsNothing) {
  UserLimits l(Opts(0, 0, 0, 0));
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(l.Take(1, true, kT0).allowed());
  EXPECT_EQ(l.size(), 0u);
}

}  // namespace
}  // namespace imbus::broker
