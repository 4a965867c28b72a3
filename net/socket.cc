#include "net/socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace imbus::net {

bool SetReuseAddrPort(int fd) {
  const int one = 1;
  return ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
         ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == 0;
}

void SetNoDelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int RemainingMs(std::chrono::steady_clock::time_point deadline) {
  const auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, 1 << 30));
}

int PollUntil(int fd, short events, std::chrono::steady_clock::time_point deadline,
              short* revents) {
  pollfd p{fd, events, 0};
  int rc;
  do {
    rc = ::poll(&p, 1, RemainingMs(deadline));
  } while (rc < 0 && errno == EINTR);
  if (revents != nullptr) *revents = p.revents;
  return rc;
}

std::string ErrnoText(int err) { return std::strerror(err); }

}  // namespace imbus::net
