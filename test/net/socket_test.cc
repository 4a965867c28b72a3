// net/socket.h: deadlines for poll never go negative and round up, PollUntil waits
// for readiness or the deadline, and two listeners can share a port with reuse.
#include "net/socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "net/unique_fd.h"

namespace imbus::net {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

TEST(SocketTest, RemainingMsIsNeverNegativeAndRoundsUp) {
  EXPECT_EQ(RemainingMs(Clock::now() - milliseconds(50)), 0);
  const int left = RemainingMs(Clock::now() + std::chrono::microseconds(300));
  EXPECT_EQ(left, 1);  // not 0: a wait must not end before its deadline
  EXPECT_GE(RemainingMs(Clock::now() + milliseconds(1000)), 999);
  EXPECT_EQ(RemainingMs(Clock::now() + std::chrono::hours(24 * 365)), 1 << 30);
}

TEST(SocketTest, PollUntilWaitsForDataOrTheDeadline) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  UniqueFd r(fds[0]), w(fds[1]);
  const auto start = Clock::now();
  EXPECT_EQ(PollUntil(r.get(), POLLIN, start + milliseconds(30)), 0);
  EXPECT_GE(Clock::now() - start, milliseconds(30));
  ASSERT_EQ(::write(w.get(), "x", 1), 1);
  short revents = 0;
  EXPECT_EQ(PollUntil(r.get(), POLLIN, Clock::now() + milliseconds(1000), &revents), 1);
  EXPECT_TRUE(revents & POLLIN);
}

UniqueFd ListenOn(uint16_t port, bool reuse, uint16_t* bound) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (reuse && !SetReuseAddrPort(fd.get())) return UniqueFd();
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return UniqueFd();
  if (::listen(fd.get(), 4) != 0) return UniqueFd();
  socklen_t len = sizeof(a);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  *bound = ntohs(a.sin_port);
  return fd;
}

TEST(SocketTest, ReuseLetsTwoListenersShareAPort) {
  uint16_t port = 0, again = 0;
  UniqueFd first = ListenOn(0, true, &port);
  ASSERT_TRUE(first.valid());
  UniqueFd second = ListenOn(port, true, &again);
  EXPECT_TRUE(second.valid()) << ErrnoText(errno);
  EXPECT_EQ(again, port);
  UniqueFd without = ListenOn(port, false, &again);
  EXPECT_FALSE(without.valid());  // what the helper is for
}

}  // namespace
}  // namespace imbus::net
