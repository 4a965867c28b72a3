#include "bench/imbus_bench/bench_conn.h"
#include "net/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace imbus::bench {

namespace {
#ifndef IP_BIND_ADDRESS_NO_PORT
constexpr int IP_BIND_ADDRESS_NO_PORT = 24;
#endif
const codec::Body kEmptyBody;
}  // namespace

BenchConn::~BenchConn() {
  if (fd_ >= 0) ::close(fd_);
}

bool BenchConn::Start(const sockaddr_in& server, const sockaddr_in& source, std::string* error,
                      const client::TlsClientContext* tls) {
  tls_ctx_ = tls;
  if (tls != nullptr || ws_wanted_) {
    char ip[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &server.sin_addr, ip, sizeof(ip));
    tls_name_ = ip;  // also the WebSocket upgrade's Host
  }
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  net::SetNoDelay(fd_);
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
  if (source.sin_addr.s_addr != 0 &&
      ::bind(fd_, reinterpret_cast<const sockaddr*>(&source), sizeof(source)) != 0) {
    *error = std::string("bind: ") + std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  connect_started_ns_ = NowNs();
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&server), sizeof(server)) != 0 &&
      errno != EINPROGRESS) {
    *error = std::string("connect: ") + std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  state_ = State::kConnecting;
  want_write_ = true;
  loop_->Add(fd_, EPOLLIN | EPOLLOUT, this);
  return true;
}

void BenchConn::Close() {
  if (state_ == State::kClosed || fd_ < 0) {
    state_ = State::kClosed;
    return;
  }
  Fail("closed by the bench");
}

void BenchConn::Fail(const std::string& why) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  tls_.reset();  // does not own the socket
  if (fd_ >= 0) {
    loop_->Remove(fd_);
    ::close(fd_);
    fd_ = -1;
  }
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [seq, fn] : pending) fn(kConnLost, kEmptyBody);
  out_.clear();
  out_pos_ = 0;
  if (on_close_) on_close_(why);
}

void BenchConn::Request(uint16_t service, uint16_t command, std::string_view body, ReplyFn fn) {
  if (state_ == State::kClosed || state_ == State::kIdle) {
    fn(kConnLost, kEmptyBody);
    return;
  }
  const uint32_t seq = next_seq_++;
  if (next_seq_ == 0) next_seq_ = 1;
  pending_.emplace(seq, std::move(fn));
  if (ws_wanted_) {
    std::string frame;
    codec::AppendFrame(&frame, 0, service, command, seq, body);
    if (ws_ && state_ == State::kOpen) {
      ws_->SendMessage(frame);
      ws_->Output(&out_);
    } else {
      queued_frames_ += frame;  // wrapped when the WebSocket opens
    }
  } else {
    codec::AppendFrame(&out_, 0, service, command, seq, body);
  }
  last_send_ns_ = NowNs();
  if (state_ == State::kOpen) Flush();
}

void BenchConn::OnEvents(uint32_t events) {
  if (state_ == State::kClosed) return;
  if (state_ == State::kConnecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      Fail(std::string("connect: ") + std::strerror(err));
      return;
    }
    if ((events & (EPOLLOUT | EPOLLIN)) == 0) {
      if (events & (EPOLLERR | EPOLLHUP)) Fail("connect: hang-up");
      return;
    }
    if (tls_ctx_ != nullptr && !handshaking_) {
      std::string error;
      tls_ = client::TlsStream::Start(*tls_ctx_, fd_, tls_name_, &error);
      if (!tls_) {
        Fail(error);
        return;
      }
      handshaking_ = true;
    }
    if (handshaking_) {
      ContinueHandshake();
      return;
    }
    if (ws_wanted_ && !upgrading_) {
      StartUpgrade();
      return;
    }
    if (upgrading_) {
      if (events & EPOLLOUT) Flush();
      if (state_ != State::kClosed && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) OnReadable();
      return;
    }
    Opened();
    if (state_ != State::kOpen) return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) OnReadable();
  // Over TLS a write may have waited for a read (WANT_READ): retry after reading too.
  if (state_ == State::kOpen && ((events & EPOLLOUT) != 0 || (tls_ && out_pos_ < out_.size()))) {
    Flush();
  }
}

void BenchConn::Opened() {
  state_ = State::kOpen;
  if (on_open_) on_open_();
  if (state_ == State::kOpen) Flush();
}

void BenchConn::StartUpgrade() {
  upgrading_ = true;
  const std::string request =
      "GET /ws HTTP/1.1\r\nHost: " + tls_name_ +
      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
  // Sent ahead of everything queued (frames wait in queued_frames_ until the 101).
  out_.insert(out_pos_, request);
  if (!WriteOut()) return;
  UpdateInterest();
}

bool BenchConn::OnUpgradeBytes(const char* data, size_t n) {
  http_in_.append(data, n);
  const size_t end = http_in_.find("\r\n\r\n");
  if (end == std::string::npos) {
    if (http_in_.size() > 8192) {
      Fail("WebSocket upgrade: answer too long");
      return false;
    }
    return true;
  }
  if (http_in_.rfind("HTTP/1.1 101 ", 0) != 0 ||
      http_in_.find("Sec-WebSocket-Accept: " + net::WsAcceptKey("dGhlIHNhbXBsZSBub25jZQ==")) ==
          std::string::npos) {
    Fail("WebSocket upgrade refused: " + http_in_.substr(0, http_in_.find("\r\n")));
    return false;
  }
  upgrading_ = false;
  ws_ = std::make_unique<net::WsSession>(net::WsSession::Role::kClient,
                                         net::WsSession::Limits{size_t{1} << 24, 1024});
  std::string rest = http_in_.substr(end + 4);
  std::string().swap(http_in_);
  // Frames requested meanwhile: one message each.
  codec::FrameDecoder split(codec::FrameDecoder::Sender::kClient, 1u << 24);
  split.Feed(queued_frames_.data(), queued_frames_.size());
  std::string().swap(queued_frames_);
  codec::Frame f;
  std::string frame;
  while (split.Next(&f) == codec::FrameDecoder::Status::kFrame) {
    frame.clear();
    codec::AppendFrame(&frame, f.header.flags, f.header.service, f.header.command, f.header.seq,
                       f.body);
    ws_->SendMessage(frame);
  }
  ws_->Output(&out_);
  Opened();
  if (state_ != State::kOpen) return false;
  return rest.empty() || Received(rest.data(), rest.size());
}

bool BenchConn::Received(const char* data, size_t n) {
  if (upgrading_) return OnUpgradeBytes(data, n);
  if (!ws_) {
    decoder_.Feed(data, n);
    return true;
  }
  ws_messages_.clear();
  const bool ok = ws_->Feed(data, n, &ws_messages_);
  ws_->Output(&out_);  // pongs, the close answer
  for (const auto& m : ws_messages_) decoder_.Feed(m.data.data(), m.data.size());
  if (!ok || ws_->close_received()) {
    Fail(ok ? "WebSocket closed by the server (" + std::to_string(ws_->close_code_received()) + ")"
            : "WebSocket: " + ws_->error());
    return false;
  }
  return true;
}

void BenchConn::ContinueHandshake() {
  switch (tls_->Handshake()) {
    case client::TlsStream::Io::kOk:
      break;
    case client::TlsStream::Io::kWantRead:
      SetInterest(false);
      return;
    case client::TlsStream::Io::kWantWrite:
      SetInterest(true);
      return;
    default:
      Fail("TLS handshake failed: " + tls_->ErrorText());
      return;
  }
  handshaking_ = false;
  SetInterest(false);
  if (ws_wanted_) {
    StartUpgrade();
    return;
  }
  Opened();
}

bool BenchConn::ReadTls() {
  // Until WANT_READ: a record already inside OpenSSL would not wake epoll again.
  char buf[16384];
  for (;;) {
    size_t got = 0;
    switch (tls_->Read(buf, sizeof(buf), &got)) {
      case client::TlsStream::Io::kOk:
        if (!Received(buf, got)) return false;
        continue;
      case client::TlsStream::Io::kWantRead:
      case client::TlsStream::Io::kWantWrite:
        return true;
      case client::TlsStream::Io::kClosed:
        Fail("closed by the server");
        return false;
      case client::TlsStream::Io::kError:
        Fail("TLS: " + tls_->ErrorText());
        return false;
    }
  }
}

bool BenchConn::ReadPlain() {
  char buf[16384];
  for (;;) {
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n > 0) {
      if (!Received(buf, static_cast<size_t>(n))) return false;
      if (static_cast<size_t>(n) < sizeof(buf)) break;
      continue;
    }
    if (n == 0) {
      Fail("closed by the server");
      return false;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    if (errno == EINTR) continue;
    Fail(std::string("recv: ") + std::strerror(errno));
    return false;
  }
  return true;
}

void BenchConn::OnReadable() {
  if (!(tls_ ? ReadTls() : ReadPlain())) return;
  codec::Frame frame;
  for (;;) {
    const auto status = decoder_.Next(&frame);
    if (status == codec::FrameDecoder::Status::kNeedMore) break;
    if (status == codec::FrameDecoder::Status::kBroken) {
      Fail("broken stream from the server: " + decoder_.error());
      return;
    }
    codec::Body body;
    std::string error;
    if (!codec::Body::Parse(frame.body, &body, &error)) {
      Fail("bad body from the server: " + error);
      return;
    }
    if (frame.header.flags & codec::kFlagPush || frame.header.seq == 0) {
      if (on_push_) on_push_(frame, body);
    } else {
      auto it = pending_.find(frame.header.seq);
      if (it == pending_.end()) continue;
      ReplyFn fn = std::move(it->second);
      pending_.erase(it);
      int code = 0;
      try {
        code = static_cast<int>(body.GetInt("code").value_or(0));
      } catch (const codec::BadField&) {
        code = static_cast<int>(codec::Code::kInternal);
      }
      fn(code, body);
    }
    if (state_ != State::kOpen) return;
  }
  decoder_.ShrinkIfEmpty();
}

bool BenchConn::WriteOut() {
  while (out_pos_ < out_.size()) {
    if (tls_) {
      size_t n = 0;
      const auto io = tls_->Write(out_.data() + out_pos_, out_.size() - out_pos_, &n);
      if (io == client::TlsStream::Io::kOk) {
        out_pos_ += n;
        continue;
      }
      if (io == client::TlsStream::Io::kWantWrite || io == client::TlsStream::Io::kWantRead) {
        break;
      }
      Fail("TLS send: " + tls_->ErrorText());
      return false;
    }
    const ssize_t n = ::send(fd_, out_.data() + out_pos_, out_.size() - out_pos_, MSG_NOSIGNAL);
    if (n > 0) {
      out_pos_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    Fail(std::string("send: ") + std::strerror(errno));
    return false;
  }
  return true;
}

void BenchConn::Flush() {
  if (!WriteOut()) return;
  if (out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
    if (out_.capacity() > 65536) out_.shrink_to_fit();
  }
  UpdateInterest();
}

void BenchConn::UpdateInterest() { SetInterest(out_pos_ < out_.size()); }

void BenchConn::SetInterest(bool want_write) {
  if (want_write == want_write_) return;
  want_write_ = want_write;
  loop_->Modify(fd_, EPOLLIN | (want_write ? EPOLLOUT : 0u), this);
}

}  // namespace imbus::bench
