// EdgeLoop, TLS side: listening for TLS clients and driving each TLS connection's
// non-blocking handshake. After the handshake a TLS connection goes through the same
// ReadInput/WriteEncoded paths as a plain one (Connection hides SSL_read/SSL_write).
#include <sys/epoll.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "edge/edge_loop.h"
#include "net/tls_error.h"

namespace imbus::edge {

void EdgeLoop::AddTlsListener(Listener listener, const TlsContext* tls) {
  tls_listener_.emplace(std::move(listener));
  tls_ = tls;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = kTlsListenerTag;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, tls_listener_->fd(), &ev) != 0) {
    throw std::runtime_error(std::string("epoll_ctl(TLS listener): ") + std::strerror(errno));
  }
}

void EdgeLoop::OnTlsEvent(Connection& c, Clock::time_point now) {
  // TLS may need the socket the other way round (a handshake step or SSL_read that
  // must write, an SSL_write that must read), and with EPOLLET an edge is not
  // repeated: so every event retries the handshake, the output and the input.
  // A handshake that never finishes is closed by SweepIdle like any silent client.
  if (c.handshaking()) {
    switch (c.ContinueHandshake()) {
      case Connection::HandshakeResult::kAgain:
        return;
      case Connection::HandshakeResult::kError:
        Close(c, "TLS handshake failed: " +
                     net::TlsErrorText("connection closed during the handshake"));
        return;
      case Connection::HandshakeResult::kDone:
        spdlog::debug("{}: conn {} from {}:{}: TLS established ({})", log_name_, c.id(),
                      c.peer_host(), c.peer_port(), c.TlsDescription());
        break;
    }
  }
  if (c.has_output()) {
    if (c.Flush() != Connection::WriteResult::kOk) {
      Close(c, "write error (peer gone)");
      return;
    }
    FinishIfFlushed(c, now);
  }
  if (!c.closed()) ReadInput(c, now);
}

}  // namespace imbus::edge
