#include "client/connection.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "codec/codes.h"
#include "codec/commands.h"
#include "net/socket.h"

namespace imbus::client {

namespace {

// A peer that takes no bytes for this long is treated as gone: Send never blocks
// forever.
constexpr std::chrono::milliseconds kWriteTimeout{10000};

uint16_t LocalPortOf(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  }
  if (addr.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  }
  return 0;
}

// Binds `fd` (of `family`) to the wildcard address and `port` with address and port
// reuse, so that a listener on the same port can coexist (P2P simultaneous open).
bool BindReusable(int fd, int family, uint16_t port, std::string* error) {
  if (!net::SetReuseAddrPort(fd)) {
    *error = "cannot set SO_REUSEADDR/SO_REUSEPORT: " + net::ErrnoText(errno);
    return false;
  }
  int rc;
  if (family == AF_INET6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    a.sin6_port = htons(port);
    rc = bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a));
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(port);
    rc = bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a));
  }
  if (rc != 0) {
    *error = "cannot bind local port " + std::to_string(port) + ": " + net::ErrnoText(errno);
    return false;
  }
  return true;
}

// One connect attempt to one resolved address; the socket on success.
net::UniqueFd ConnectOne(const addrinfo& ai, const ConnectOptions& options,
                         std::chrono::steady_clock::time_point deadline, std::string* error) {
  net::UniqueFd fd(socket(ai.ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    *error = "socket: " + net::ErrnoText(errno);
    return {};
  }
  if (options.local_port >= 0 &&
      !BindReusable(fd.get(), ai.ai_family, static_cast<uint16_t>(options.local_port), error)) {
    return {};
  }
  if (connect(fd.get(), ai.ai_addr, ai.ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      *error = net::ErrnoText(errno);
      return {};
    }
    pollfd p{fd.get(), POLLOUT, 0};
    int rc;
    do {
      rc = poll(&p, 1, net::RemainingMs(deadline));
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) {
      *error = "timed out after " + std::to_string(options.timeout.count()) + " ms";
      return {};
    }
    int err = 0;
    socklen_t len = sizeof(err);
    if (rc < 0) {
      err = errno;
    } else if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
      err = errno;
    }
    if (err != 0) {
      *error = net::ErrnoText(err);
      return {};
    }
  }
  net::SetNoDelay(fd.get());
  return fd;
}

Response Failure(int code, std::string error) {
  Response r;
  r.code = code;
  r.error = std::move(error);
  return r;
}

Response MakeResponse(codec::Frame frame) {
  Response r;
  r.header = frame.header;
  std::string why;
  if (!codec::Body::Parse(frame.body, &r.body, &why)) {
    r.code = kCodeBadResponse;
    r.error = "unparsable response body: " + why;
    return r;
  }
  try {
    std::optional<int64_t> code = r.body.GetInt("code");
    if (!code) {
      r.code = kCodeBadResponse;
      r.error = "response body has no 'code'";
      return r;
    }
    r.code = static_cast<int>(*code);
    r.error = r.body.GetString("error").value_or("");
    if (r.code == static_cast<int>(codec::Code::kRateLimited)) {
      r.retry_ms = std::max<int64_t>(r.body.GetInt("retry_ms").value_or(0), 0);
    }
  } catch (const codec::BadField& e) {
    r.code = kCodeBadResponse;
    r.error = std::string("bad response body: ") + e.what();
  }
  return r;
}

bool IsResponse(const codec::Frame& f) { return (f.header.flags & codec::kFlagResponse) != 0; }

// The fatal SYS/ERROR before the server closes: 1/65535 with seq 0 (this client never
// sends seq 0). Not the flags: edges before protocol.md said "no RESPONSE flag" set it.
bool IsSysError(const codec::Header& h) {
  return h.service == codec::ToWire(codec::Service::kSys) && h.command == codec::sys::kError &&
         h.seq == 0;
}

}  // namespace

const char* ResultCodeName(int code) {
  switch (code) {
    case kCodeTimeout:
      return "TIMEOUT";
    case kCodeDisconnected:
      return "DISCONNECTED";
    case kCodeBadResponse:
      return "BAD_RESPONSE";
    case kCodeLocal:
      return "LOCAL";
    default:
      return codec::CodeName(code);
  }
}

std::string DescribeResult(int code, std::string_view error) {
  std::string out = ResultCodeName(code);
  out += ": ";
  if (!error.empty()) {
    out += error;
  } else if (code == kCodeTimeout) {
    out += "no response in time";
  } else if (code == kCodeDisconnected) {
    out += "connection closed";
  } else if (code == kCodeBadResponse) {
    out += "the server sent a response this client cannot read";
  } else {
    out += codec::CodeDescription(code);
  }
  return out;
}

bool Push::is_error() const { return IsSysError(header); }

Connection Connection::FromFd(net::UniqueFd fd) {
  Connection c;
  int flags = fcntl(fd.get(), F_GETFL, 0);
  if (flags >= 0) fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
  net::SetNoDelay(fd.get());
  c.local_port_ = LocalPortOf(fd.get());
  c.fd_ = std::move(fd);
  c.close_reason_.clear();
  return c;
}

bool Connection::Connect(const std::string& host, uint16_t port, const ConnectOptions& options,
                         std::string* error) {
  CloseWith("reconnecting");
  const auto deadline = Clock::now() + options.timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
  if (rc != 0) {
    *error = "cannot resolve '" + host + "': " + gai_strerror(rc);
    return false;
  }
  net::UniqueFd fd;
  for (addrinfo* ai = list; ai != nullptr && !fd.valid(); ai = ai->ai_next) {
    fd = ConnectOne(*ai, options, deadline, error);
    if (Clock::now() >= deadline) break;
  }
  freeaddrinfo(list);
  if (!fd.valid()) return false;

  fd_ = std::move(fd);
  if (tls_ctx_ && !Handshake(tls_server_name_.empty() ? host : tls_server_name_, options.timeout,
                             deadline, error)) {
    CloseWith("TLS handshake failed");
    return false;
  }
  local_port_ = LocalPortOf(fd_.get());
  decoder_ = codec::FrameDecoder(codec::FrameDecoder::Sender::kServer);
  inbox_.clear();
  abandoned_.clear();
  next_seq_ = 1;
  close_reason_.clear();
  return true;
}

bool Connection::Handshake(const std::string& server_name, std::chrono::milliseconds timeout,
                           Clock::time_point deadline, std::string* error) {
  tls_ = TlsStream::Start(*tls_ctx_, fd_.get(), server_name, error);
  if (!tls_) return false;
  for (;;) {
    const TlsStream::Io io = tls_->Handshake();
    if (io == TlsStream::Io::kOk) return true;
    if (io == TlsStream::Io::kError) {
      *error = "TLS handshake failed: " + tls_->ErrorText();
      return false;
    }
    pollfd p{fd_.get(), static_cast<short>(io == TlsStream::Io::kWantRead ? POLLIN : POLLOUT), 0};
    int rc;
    do {
      rc = poll(&p, 1, net::RemainingMs(deadline));
    } while (rc < 0 && errno == EINTR);
    if (rc <= 0) {
      *error = "TLS handshake timed out after " + std::to_string(timeout.count()) + " ms";
      return false;
    }
  }
}

ssize_t Connection::ReceiveSome(char* buf, size_t n, std::string* tls_error) {
  if (!tls_) return recv(fd_.get(), buf, n, 0);
  size_t got = 0;
  switch (tls_->Read(buf, n, &got)) {
    case TlsStream::Io::kOk:
      return static_cast<ssize_t>(got);
    case TlsStream::Io::kClosed:
      return 0;
    case TlsStream::Io::kWantRead:
    case TlsStream::Io::kWantWrite:
      errno = EAGAIN;
      return -1;
    case TlsStream::Io::kError:
      break;
  }
  *tls_error = tls_->ErrorText();
  errno = EPROTO;
  return -1;
}

ssize_t Connection::SendSome(const char* buf, size_t n, std::string* tls_error) {
  if (!tls_) return send(fd_.get(), buf, n, MSG_NOSIGNAL);
  size_t written = 0;
  switch (tls_->Write(buf, n, &written)) {
    case TlsStream::Io::kOk:
      return static_cast<ssize_t>(written);
    case TlsStream::Io::kClosed:
      errno = EPIPE;
      return -1;
    case TlsStream::Io::kWantRead:
    case TlsStream::Io::kWantWrite:
      errno = EAGAIN;
      return -1;
    case TlsStream::Io::kError:
      break;
  }
  *tls_error = tls_->ErrorText();
  errno = EPROTO;
  return -1;
}

uint32_t Connection::Send(uint16_t service, uint16_t command, std::string_view body) {
  const uint32_t seq = next_seq_;
  next_seq_ = next_seq_ == UINT32_MAX ? 1 : next_seq_ + 1;  // 0 is reserved for pushes
  return SendFrame(0, service, command, seq, body) ? seq : 0;
}

bool Connection::SendFrame(uint16_t flags, uint16_t service, uint16_t command, uint32_t seq,
                           std::string_view body) {
  out_.clear();
  codec::AppendFrame(&out_, flags, service, command, seq, body);
  return WriteAll(out_);
}

bool Connection::SendRaw(std::string_view bytes) { return WriteAll(bytes); }

bool Connection::WriteAll(std::string_view bytes) {
  const auto deadline = Clock::now() + kWriteTimeout;
  while (!bytes.empty()) {
    if (closed()) return false;
    std::string tls_error;
    ssize_t n = SendSome(bytes.data(), bytes.size(), &tls_error);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      CloseWith("write failed: " + (tls_error.empty() ? net::ErrnoText(errno) : tls_error));
      return false;
    }
    // The peer is not reading. Keep reading its frames meanwhile so that two
    // parties both blocked in writes cannot deadlock.
    pollfd p{fd_.get(), POLLOUT | POLLIN, 0};
    int rc = poll(&p, 1, net::RemainingMs(deadline));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) {
      CloseWith(rc == 0 ? "write timed out: the peer reads nothing"
                        : "poll failed: " + net::ErrnoText(errno));
      return false;
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) ReadAvailable();
  }
  return !closed();
}

void Connection::CloseWith(std::string reason) {
  if (!fd_.valid()) return;
  tls_.reset();  // does not own the socket
  fd_.Reset();
  close_reason_ = std::move(reason);
}

void Connection::ReadAvailable() {
  char buf[65536];
  for (;;) {
    if (closed()) return;
    std::string tls_error;
    ssize_t n = ReceiveSome(buf, sizeof(buf), &tls_error);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) {
      CloseWith("read failed: " + (tls_error.empty() ? net::ErrnoText(errno) : tls_error));
      return;
    }
    if (n > 0) decoder_.Feed(buf, static_cast<size_t>(n));
    codec::Frame frame;
    for (;;) {
      codec::FrameDecoder::Status s = decoder_.Next(&frame);
      if (s == codec::FrameDecoder::Status::kNeedMore) break;
      if (s == codec::FrameDecoder::Status::kBroken) {
        CloseWith("broken stream from peer: " + decoder_.error());
        return;
      }
      if (IsResponse(frame) && abandoned_.erase(frame.header.seq) > 0) continue;
      const bool sys_error = IsSysError(frame.header);
      std::string reason;
      if (sys_error) {
        // The server closes after SYS/ERROR; do it now so closed() is deterministic.
        Response r = MakeResponse(frame);
        reason = "server error: " + r.Describe();
      }
      inbox_.push_back(std::move(frame));
      if (sys_error) {
        CloseWith(std::move(reason));
        return;
      }
    }
    if (n == 0) {
      CloseWith("closed by peer");
      return;
    }
  }
}

bool Connection::ReadOnce(Clock::time_point deadline) {
  for (;;) {
    if (closed()) return false;
    pollfd p{fd_.get(), POLLIN, 0};
    int rc = poll(&p, 1, net::RemainingMs(deadline));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) {
      CloseWith("poll failed: " + net::ErrnoText(errno));
      return false;
    }
    if (rc == 0) return false;
    ReadAvailable();
    return true;
  }
}

Response Connection::Call(uint16_t service, uint16_t command, std::string_view body,
                          std::chrono::milliseconds timeout) {
  const uint32_t seq = Send(service, command, body);
  if (seq == 0) return Failure(kCodeDisconnected, close_reason_);
  return WaitResponse(seq, timeout);
}

Response Connection::WaitResponse(uint32_t seq, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (bool first = true;; first = false) {
    auto it = std::find_if(inbox_.begin(), inbox_.end(), [seq](const codec::Frame& f) {
      return IsResponse(f) && f.header.seq == seq;
    });
    if (it != inbox_.end()) {
      codec::Frame frame = std::move(*it);
      inbox_.erase(it);
      return MakeResponse(std::move(frame));
    }
    if (closed()) return Failure(kCodeDisconnected, close_reason_);
    if (!first && Clock::now() >= deadline) {
      abandoned_.insert(seq);
      return Failure(kCodeTimeout, "no response within " + std::to_string(timeout.count()) + " ms");
    }
    ReadOnce(deadline);
  }
}

std::optional<Push> Connection::ToPush(codec::Frame frame) {
  Push p;
  p.service = frame.header.service;
  p.command = frame.header.command;
  p.header = frame.header;
  std::string ignored;
  if (!codec::Body::Parse(frame.body, &p.body, &ignored)) p.body = codec::Body();
  return p;
}

std::optional<Push> Connection::WaitPush(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (bool first = true;; first = false) {
    auto it = std::find_if(inbox_.begin(), inbox_.end(),
                           [](const codec::Frame& f) { return !IsResponse(f); });
    if (it != inbox_.end()) {
      codec::Frame frame = std::move(*it);
      inbox_.erase(it);
      return ToPush(std::move(frame));
    }
    if (closed() || (!first && Clock::now() >= deadline)) return std::nullopt;
    ReadOnce(deadline);
  }
}

std::optional<codec::Frame> Connection::NextFrame(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (bool first = true;; first = false) {
    if (!inbox_.empty()) {
      codec::Frame frame = std::move(inbox_.front());
      inbox_.pop_front();
      return frame;
    }
    if (closed() || (!first && Clock::now() >= deadline)) return std::nullopt;
    ReadOnce(deadline);
  }
}

}  // namespace imbus::client
