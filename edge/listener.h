// Internal to edge/. Listener: one non-blocking listening TCP socket (IPv4) bound with
// SO_REUSEADDR + SO_REUSEPORT, so every edge thread can hold its own socket on the
// same port and the kernel spreads new connections across them.
//
// Owned and used by one thread (created by EdgeServer, then handed to its loop).
#pragma once

#include <cstdint>
#include <string>

#include "net/unique_fd.h"

namespace imbus::edge {

class Listener {
 public:
  // Binds host:port (port 0: any free port) and listens. Throws std::runtime_error
  // with a readable message on failure (a startup error).
  static Listener Bind(const std::string& host, uint16_t port);

  Listener(Listener&&) = default;
  Listener& operator=(Listener&&) = default;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  int fd() const { return fd_.get(); }
  uint16_t port() const { return port_; }

  enum class Result { kAccepted, kAgain, kDropped, kError };

  // Accepts one connection (non-blocking, close-on-exec, TCP_NODELAY). kAgain when
  // none is waiting. On EMFILE/ENFILE the spare fd is given up to accept and close
  // the newcomer (kDropped), so the backlog does not spin the loop (muduo's trick).
  Result Accept(net::UniqueFd* out, std::string* peer_host, uint16_t* peer_port);

 private:
  Listener(net::UniqueFd fd, uint16_t port);

  net::UniqueFd fd_;
  net::UniqueFd spare_;  // /dev/null, given up on EMFILE
  uint16_t port_ = 0;
};

}  // namespace imbus::edge
