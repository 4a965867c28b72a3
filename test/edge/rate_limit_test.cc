// The pure pieces of the rate limits, on a fake clock (no sleeps): the token bucket
// (bus/token_bucket.h), the per-address login backoff and connection cap.
#include <gtest/gtest.h>

#include "net/token_bucket.h"
#include "edge/ip_limits.h"
#include "edge/login_backoff.h"

namespace imbus::edge {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
const Clock::time_point kT0 = Clock::time_point() + std::chrono::hours(1);

TEST(TokenBucketTest, BurstThenRateWithRetryMs) {
  const net::TokenRate rate{10, 3};  // 10/s, burst 3
  net::TokenBucket b;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(b.Take(rate, kT0), 0) << i;
  // Empty: the next token comes after 100 ms.
  EXPECT_EQ(b.Take(rate, kT0), 100);
  EXPECT_EQ(b.Take(rate, kT0 + milliseconds(40)), 60);  // refusals take nothing
  EXPECT_EQ(b.Take(rate, kT0 + milliseconds(100)), 0);
  EXPECT_GT(b.Take(rate, kT0 + milliseconds(100)), 0);
  // Idle for long: full again, but never more than the burst.
  const auto later = kT0 + std::chrono::seconds(60);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(b.Take(rate, later), 0) << i;
  EXPECT_EQ(b.Take(rate, later), 100);
}

TEST(TokenBucketTest, DisabledNeverRefusesAndCheckDoesNotConsume) {
  net::TokenBucket b;
  const net::TokenRate off{0, 0};
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(b.Take(off, kT0), 0);
  const net::TokenRate one{1, 1};
  net::TokenBucket c;
  EXPECT_EQ(c.Check(one, kT0), 0);
  EXPECT_EQ(c.Check(one, kT0), 0);  // only looked
  c.Consume(one);
  EXPECT_EQ(c.Check(one, kT0), 1000);
  EXPECT_EQ(one.refill_time(), std::chrono::seconds(1));
}

TEST(TokenBucketTest, ClockGoingBackwardsGivesNothing) {
  const net::TokenRate rate{1, 1};
  net::TokenBucket b;
  EXPECT_EQ(b.Take(rate, kT0), 0);
  EXPECT_GT(b.Take(rate, kT0 - std::chrono::seconds(5)), 0);
  EXPECT_EQ(b.Take(rate, kT0 + std::chrono::seconds(1)), 0);
}

LoginBackoffOptions Backoff(uint32_t free, int64_t base, int64_t max) {
  LoginBackoffOptions o;
  o.free_failures = free;
  o.base_ms = base;
  o.max_ms = max;
  return o;
}

TEST(LoginBackoffTest, WaitsGrowExponentiallyAfterTheFreeFailuresAndAreCapped) {
  LoginBackoff b(Backoff(2, 100, 1000));
  EXPECT_EQ(b.DelayMs(2), 0);
  EXPECT_EQ(b.DelayMs(3), 100);
  EXPECT_EQ(b.DelayMs(4), 200);
  EXPECT_EQ(b.DelayMs(6), 800);
  EXPECT_EQ(b.DelayMs(7), 1000);
  EXPECT_EQ(b.DelayMs(1000), 1000);

  auto t = kT0;
  const std::string ip = "10.0.0.1";
  for (int i = 0; i < 2; ++i) {  // free failures: no wait
    ASSERT_EQ(b.Admit(ip, t), 0);
    b.Failed(ip, "n:victim", t);
  }
  ASSERT_EQ(b.Admit(ip, t), 0);    // the third attempt goes, reserving 100 ms
  EXPECT_EQ(b.Admit(ip, t), 100);  // a parallel one does not
  b.Failed(ip, "n:victim", t);
  EXPECT_EQ(b.Admit(ip, t + milliseconds(30)), 70);
  t += milliseconds(100);
  ASSERT_EQ(b.Admit(ip, t), 0);
  b.Failed(ip, "n:victim", t);
  EXPECT_EQ(b.Admit(ip, t), 200);
  t += milliseconds(200);
  ASSERT_EQ(b.Admit(ip, t), 0);
  b.Failed(ip, "n:victim", t);
  EXPECT_EQ(b.Admit(ip, t), 400);
  // Another address is not affected.
  EXPECT_EQ(b.Admit("10.0.0.2", t), 0);
  // A success at the account that was failed resets the address.
  t += milliseconds(400);
  ASSERT_EQ(b.Admit(ip, t), 0);
  b.Succeeded(ip, {"n:victim", "u:7"});
  EXPECT_EQ(b.size(), 0u);
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(b.Admit(ip, t), 0);
    b.Failed(ip, "n:victim", t);
  }
  EXPECT_EQ(b.Admit(ip, t), 0);
}

// The bypass of issue 14: guesses at a victim, each few followed by a login to the
// guesser's own account. The own successes forgive nothing of the victim's failures.
TEST(LoginBackoffTest, SuccessAtAnotherAccountDoesNotReset) {
  LoginBackoff b(Backoff(5, 100, 1000));
  const std::string ip = "10.0.0.1";
  auto t = kT0;
  int guesses = 0;
  int64_t refused = 0;
  for (int round = 0; round < 10 && refused == 0; ++round) {
    for (int i = 0; i < 4 && refused == 0; ++i) {
      refused = b.Admit(ip, t);
      if (refused == 0) {
        b.Failed(ip, "n:victim", t);
        ++guesses;
      }
    }
    if (refused == 0 && (refused = b.Admit(ip, t)) == 0) b.Succeeded(ip, {"n:me", "u:9"});
    t += milliseconds(1);
  }
  EXPECT_GT(refused, 0);
  EXPECT_EQ(guesses, 6);  // 5 free, then the sixth reserves the first wait
  EXPECT_EQ(b.failures(ip), 6u);

  // The owner of a failed account: a typo, then the right password, forgives it.
  const std::string home = "10.0.0.2";
  b.Failed(home, "n:me", t);
  b.Failed(home, "n:victim", t);
  b.Succeeded(home, {"n:me", "u:9"});
  EXPECT_EQ(b.failures(home), 1u);
  // Failures beyond the targets told apart are never forgiven.
  const std::string spray = "10.0.0.3";
  for (int i = 0; i < 20; ++i) b.Failed(spray, "u:" + std::to_string(i), t);
  b.Succeeded(spray, {"u:19"});
  EXPECT_EQ(b.failures(spray), 20u);
  b.Succeeded(spray, {"u:0"});
  EXPECT_EQ(b.failures(spray), 19u);
}

TEST(LoginBackoffTest, QuietAddressesAreForgottenAndMemoryIsBounded) {
  LoginBackoffOptions o = Backoff(0, 100, 1000);
  o.max_ips = 3;
  LoginBackoff b(o);
  for (int i = 0; i < 10; ++i) b.Failed("10.0.0." + std::to_string(i), "", kT0);
  EXPECT_EQ(b.size(), 3u);
  EXPECT_GT(b.Admit("10.0.0.9", kT0), 0);  // the newest are kept
  EXPECT_EQ(b.Admit("10.0.0.0", kT0), 0);  // the oldest went
  // Long quiet (10 x the longest wait): forgotten as they are looked at.
  const auto later = kT0 + std::chrono::seconds(11);
  for (int i = 0; i < 3; ++i) (void)b.Admit("other", later);
  EXPECT_EQ(b.size(), 0u);
}

TEST(LoginBackoffTest, ZeroBaseDisables) {
  LoginBackoff b(Backoff(0, 0, 0));
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(b.Admit("x", kT0), 0);
    b.Failed("x", "", kT0);
  }
  EXPECT_EQ(b.size(), 0u);
}

TEST(IpLimitsTest, CapsOpenConnectionsPerAddress) {
  IpLimits limits(2, Backoff(5, 1000, 60000));
  EXPECT_TRUE(limits.AcquireConnection("a"));
  EXPECT_TRUE(limits.AcquireConnection("a"));
  EXPECT_FALSE(limits.AcquireConnection("a"));
  EXPECT_TRUE(limits.AcquireConnection("b"));
  EXPECT_EQ(limits.open_connections("a"), 2u);
  limits.ReleaseConnection("a");
  EXPECT_TRUE(limits.AcquireConnection("a"));
  EXPECT_FALSE(limits.AcquireConnection("a"));

  IpLimits off(0, Backoff(5, 0, 0));
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(off.AcquireConnection("a"));
  EXPECT_FALSE(off.login_backoff_enabled());
  EXPECT_EQ(off.AdmitLogin("a", kT0), 0);
}

}  // namespace
}  // namespace imbus::edge
