#include "edge/connection.h"

#include <sys/socket.h>

#include <openssl/err.h>

#include <algorithm>
#include <cerrno>

namespace imbus::edge {

Connection::Connection(uint64_t id, net::UniqueFd fd, uint32_t max_frame, std::string peer_host,
                       uint16_t peer_port, Clock::time_point now)
    : id_(id),
      fd_(std::move(fd)),
      peer_port_(peer_port),
      decoder_(codec::FrameDecoder::Sender::kClient, max_frame),
      last_activity_(now),
      peer_host_(std::move(peer_host)) {}

namespace {
// Writes as much of [data, data+n) as the socket takes. -1 on a socket error.
ssize_t SendSome(int fd, const char* data, size_t n) {
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

// The same through TLS. With partial writes on, SSL_write returns after each record;
// WANT_READ/WANT_WRITE mean "later": the unwritten rest stays in the caller's buffer
// and is offered again (possibly moved: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER).
ssize_t SslSendSome(SSL* ssl, const char* data, size_t n) {
  size_t done = 0;
  while (done < n) {
    ERR_clear_error();
    const int chunk = static_cast<int>(std::min<size_t>(n - done, 1 << 30));
    const int w = SSL_write(ssl, data + done, chunk);
    if (w > 0) {
      done += static_cast<size_t>(w);
      continue;
    }
    const int err = SSL_get_error(ssl, w);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) break;
    ERR_clear_error();
    return -1;
  }
  return static_cast<ssize_t>(done);
}
}  // namespace

ssize_t Connection::WriteSome(const char* data, size_t n) {
  if (tls_ == nullptr) return SendSome(fd_.get(), data, n);
  if (!handshake_done_) return 0;  // queued until the handshake is done
  return SslSendSome(tls_.get(), data, n);
}

Connection::HandshakeResult Connection::ContinueHandshake() {
  ERR_clear_error();
  const int rc = SSL_do_handshake(tls_.get());
  if (rc == 1) {
    handshake_done_ = true;
    return HandshakeResult::kDone;
  }
  const int err = SSL_get_error(tls_.get(), rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return HandshakeResult::kAgain;
  return HandshakeResult::kError;
}

std::string Connection::TlsDescription() const {
  if (tls_ == nullptr) return "plain";
  return std::string(SSL_get_version(tls_.get())) + " " +
         SSL_CIPHER_get_name(SSL_get_current_cipher(tls_.get()));
}

ssize_t Connection::TlsReceive(char* buf, size_t n) {
  ERR_clear_error();
  const int r = SSL_read(tls_.get(), buf, static_cast<int>(std::min<size_t>(n, 1 << 30)));
  if (r > 0) return r;
  switch (SSL_get_error(tls_.get(), r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_ZERO_RETURN:  // close_notify
      return 0;
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error() == 0) return r == 0 ? 0 : -1;  // EOF, or errno from the socket
      errno = EPROTO;
      return -1;
    default:
      errno = EPROTO;
      return -1;
  }
}

Connection::WriteResult Connection::Send(std::string_view bytes, size_t max_output) {
  if (closed()) return WriteResult::kOk;
  if (!has_output()) {
    const ssize_t w = WriteSome(bytes.data(), bytes.size());
    if (w < 0) return WriteResult::kError;
    bytes.remove_prefix(static_cast<size_t>(w));
    if (bytes.empty()) return WriteResult::kOk;
  }
  if (pending_output() + bytes.size() > max_output) return WriteResult::kSlowReader;
  Append(bytes);
  return WriteResult::kOk;
}

Connection::WriteResult Connection::Queue(std::string_view bytes, size_t max_output) {
  if (closed()) return WriteResult::kOk;
  if (pending_output() + bytes.size() > max_output) {
    if (Flush() != WriteResult::kOk) return WriteResult::kError;
    if (!has_output()) return Send(bytes, max_output);
    if (pending_output() + bytes.size() > max_output) return WriteResult::kSlowReader;
  }
  Append(bytes);
  return WriteResult::kOk;
}

void Connection::Append(std::string_view bytes) {
  // Compact before growing: the written prefix is dead weight.
  if (out_pos_ > 0) {
    out_.erase(0, out_pos_);
    out_pos_ = 0;
  }
  out_.append(bytes.data(), bytes.size());
}

Connection::WriteResult Connection::Flush() {
  if (closed() || !has_output()) return WriteResult::kOk;
  const ssize_t w = WriteSome(out_.data() + out_pos_, out_.size() - out_pos_);
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
  if (!closed() && tls_ != nullptr && handshake_done_) {
    // close_notify before the FIN; if the socket cannot take it now, the FIN alone
    // still ends the stream for the client.
    ERR_clear_error();
    SSL_shutdown(tls_.get());
    ERR_clear_error();
  }
  if (!closed()) ::shutdown(fd_.get(), SHUT_WR);
  shut_down_ = true;
}

}  // namespace imbus::edge
