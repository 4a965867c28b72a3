// Drill 4: the edge runs out of file descriptors (EMFILE). Its RLIMIT_NOFILE is
// lowered to a few above what it has open, then connections pile up until accept
// fails: the edge must stay up, log it, close the newcomers cleanly instead of
// leaving them hanging, keep serving its existing clients, and serve new ones once
// the extra connections are gone.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test/drills/drill.h"

namespace imbus::testing {
namespace {

int OpenFds(pid_t pid) {
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (::readdir(d) != nullptr) ++n;
  ::closedir(d);
  return n - 2;  // . and ..
}

int ConnectRaw(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// True when the peer closed `fd` (EOF or reset) within `timeout`.
bool ClosedByPeer(int fd, milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
  char b;
  return ::recv(fd, &b, 1, MSG_DONTWAIT) <= 0;
}

class FdExhaustionDrill : public DrillTest {};

TEST_F(FdExhaustionDrill, EdgeOutOfFdsStaysUpRefusesCleanlyThenServes) {
  StartStack();
  StartLoad();  // an established load on the edge, which must not notice
  Process& edge = stack_->edge(0);
  const pid_t pid = edge.pid();
  constexpr int kHeadroom = 8;
  const int open_now = OpenFds(pid);
  ASSERT_GT(open_now, 0);
  rlimit lim{};
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, nullptr, &lim), 0);
  rlimit low = lim;
  low.rlim_cur = static_cast<rlim_t>(open_now + kHeadroom);
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &low, nullptr), 0);

  const size_t edge_log = edge.LogSize();
  std::vector<int> extra;
  int refused = 0;
  for (int i = 0; i < 4 * kHeadroom && refused < 3; ++i) {
    const int fd = ConnectRaw(stack_->edge_port(0));
    ASSERT_GE(fd, 0);
    extra.push_back(fd);
    // An accepted connection stays open (idle); a refused one is closed at once.
    if (i >= kHeadroom / 2 && ClosedByPeer(fd, milliseconds(500))) ++refused;
  }
  EXPECT_GT(refused, 0) << "no connection was refused with the fd limit reached";
  EXPECT_TRUE(edge.WaitForLog("Too many open files", seconds(10), edge_log));
  EXPECT_TRUE(edge.Running());
  // The established clients carry on while the edge is at its limit.
  EXPECT_TRUE(load_->WaitProgress(20, seconds(30))) << "the load stalled at the fd limit";

  for (int fd : extra) ::close(fd);
  // The edge sees the closes and frees its fds; then new clients are served (each
  // ServesAgain attempt opens two connections).
  ExpectRecoveredAndNothingLost("fd exhaustion");
  EXPECT_TRUE(edge.Running());
  EXPECT_EQ(load_->resumes(), 0) << "established clients were disconnected";
  ::prlimit(pid, RLIMIT_NOFILE, &lim, nullptr);
}

}  // namespace
}  // namespace imbus::testing
