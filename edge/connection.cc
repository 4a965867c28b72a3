#include "edge/connection.h"

#include <sys/socket.h>

#include <cerrno>

namespace imbus::edge {

Connection::Connection(uint64_t id, UniqueFd fd, uint32_t max_frame, std::string peer_host,
                       uint16_t peer_port, Clock::time_point now)
    : id_(id),
      fd_(std::move(fd)),
      peer_port_(peer_port),
      decoder_(codec::FrameDecoder::Sender::kClient, max_frame),
      last_activity_(now),
      peer_host_(std::move(peer_host)) {}

namespace {
// Writes as much of [data, data+n) as the socket takes. -1 on a socket error.
ssize_t WriteSome(int fd, const char* data, size_t n) {
  size_t done = 0;
  while (done < n) {
    const ssize_t w = ::send(fd, data + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      done += static_cast<size_t>(w);
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      return -1;
    }
  }
  return static_cast<ssize_t>(done);
}
}  // namespace

Connection::WriteResult Connection::Send(std::string_view bytes, size_t max_output) {
  if (closed()) return WriteResult::kOk;
  if (!has_output()) {
    const ssize_t w = WriteSome(fd_.get(), bytes.data(), bytes.size());
    if (w < 0) return WriteResult::kError;
    bytes.remove_prefix(static_cast<size_t>(w));
    if (bytes.empty()) return WriteResult::kOk;
  }
  if (pending_output() + bytes.size() > max_output) return WriteResult::kSlowReader;
  // Compact before growing: the written prefix is dead weight.
  if (out_pos_ > 0) {
    out_.erase(0, out_pos_);
    out_pos_ = 0;
  }
  out_.append(bytes.data(), bytes.size());
  return WriteResult::kOk;
}

Connection::WriteResult Connection::Flush() {
  if (closed() || !has_output()) return WriteResult::kOk;
  const ssize_t w = WriteSome(fd_.get(), out_.data() + out_pos_, out_.size() - out_pos_);
  if (w < 0) return WriteResult::kError;
  out_pos_ += static_cast<size_t>(w);
  if (out_pos_ == out_.size()) {
    std::string().swap(out_);  // idle connections keep no buffer
    out_pos_ = 0;
  }
  return WriteResult::kOk;
}

void Connection::LogIn(codec::SessionInfo session) {
  session_ = std::move(session);
  logged_in_ = true;
}

void Connection::LogOut() {
  session_ = codec::SessionInfo{};
  logged_in_ = false;
}

void Connection::ShutdownWrite() {
  if (!closed()) ::shutdown(fd_.get(), SHUT_WR);
  shut_down_ = true;
}

}  // namespace imbus::edge
