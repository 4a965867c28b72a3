#include "edge/listener.h"
#include "net/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

namespace imbus::edge {

namespace {

std::runtime_error SysError(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

in_addr Resolve(const std::string& host) {
  in_addr addr{};
  if (::inet_pton(AF_INET, host.c_str(), &addr) == 1) return addr;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr) {
    throw std::runtime_error("cannot resolve listen host '" + host + "': " + ::gai_strerror(rc));
  }
  addr = reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr;
  ::freeaddrinfo(res);
  return addr;
}

net::UniqueFd OpenSpare() { return net::UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)); }

}  // namespace

Listener::Listener(net::UniqueFd fd, uint16_t port)
    : fd_(std::move(fd)), spare_(OpenSpare()), port_(port) {}

Listener Listener::Bind(const std::string& host, uint16_t port) {
  net::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) throw SysError("socket");
  if (!net::SetReuseAddrPort(fd.get())) {
    throw SysError("setsockopt(SO_REUSEADDR/SO_REUSEPORT)");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr = Resolve(host);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    throw SysError("bind " + host + ":" + std::to_string(port));
  }
  if (::listen(fd.get(), SOMAXCONN) != 0) throw SysError("listen");
  socklen_t len = sizeof(addr);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw SysError("getsockname");
  }
  return Listener(std::move(fd), ntohs(addr.sin_port));
}

Listener::Result Listener::Accept(net::UniqueFd* out, std::string* peer_host, uint16_t* peer_port) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  const int fd =
      ::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    switch (errno) {
      case EAGAIN:
        return Result::kAgain;
      case EINTR:
      case ECONNABORTED:
      case EPROTO:
        return Result::kDropped;
      case EMFILE:
      case ENFILE: {
        // Out of fds: free the spare, take the newcomer and close it, so it sees a
        // closed connection instead of hanging in the backlog and waking us forever.
        // The kernel reports EMFILE before it looks at the backlog, so an empty
        // backlog gives EMFILE too: then the spare's accept finds nothing (EAGAIN)
        // and we must stop, not drop again (that loop spun forever, starving every
        // connection of the thread, the ones that would free fds included).
        const int why = errno;
        spare_.Reset();
        const int newcomer = ::accept(fd_.get(), nullptr, nullptr);
        if (newcomer >= 0) ::close(newcomer);
        spare_ = OpenSpare();
        if (newcomer < 0) return Result::kAgain;
        spdlog::warn("accept: {}; dropped a new connection", std::strerror(why));
        return Result::kDropped;
      }
      default:
        spdlog::error("accept: {}", std::strerror(errno));
        return Result::kError;
    }
  }
  out->Reset(fd);
  net::SetNoDelay(fd);
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &addr.sin_addr, buf, sizeof(buf));
  *peer_host = buf;
  *peer_port = ntohs(addr.sin_port);
  return Result::kAccepted;
}

}  // namespace imbus::edge
