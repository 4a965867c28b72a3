// Public. The socket and poll helpers that edge, client and bench share (the anet.h
// of imbus): address and port reuse, TCP_NODELAY, and waiting on one fd with an
// EINTR-safe poll bounded by a deadline. Plain functions over raw fds; no I/O
// policy of their own.
#pragma once

#include <poll.h>

#include <chrono>
#include <string>

namespace imbus::net {

// SO_REUSEADDR and SO_REUSEPORT: every edge thread holds its own listener on one
// port; a P2P client binds its outgoing connection and its listener to one port.
// False (errno set) when the kernel refuses.
bool SetReuseAddrPort(int fd);
// TCP_NODELAY: frames are small and latency-bound. Best effort.
void SetNoDelay(int fd);

// Milliseconds until `deadline` for poll(): 0 once it has passed, never negative,
// rounded up so a wait does not end a moment early.
int RemainingMs(std::chrono::steady_clock::time_point deadline);

// poll() on one fd for `events` until `deadline`, retried on EINTR. Returns poll's
// result: > 0 ready (revents in *revents), 0 timed out, < 0 failed (errno set).
int PollUntil(int fd, short events, std::chrono::steady_clock::time_point deadline,
              short* revents = nullptr);

// strerror(err) as a string.
std::string ErrnoText(int err);

}  // namespace imbus::net
