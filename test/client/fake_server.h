// Test-only. FakeServer: a tiny scripted edge for client tests. It listens on
// 127.0.0.1:0, accepts one connection in its own thread and runs the test's script
// against it; the script reads client frames (decoded with FrameDecoder(kClient))
// and writes whatever bytes it likes back (responses, pushes, split or coalesced
// frames, garbage). Script failures are reported as gtest failures.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include <gtest/gtest.h>

#include "net/unique_fd.h"
#include "codec/body.h"
#include "codec/frame.h"
#include "codec/frame_decoder.h"

namespace imbus::client::testing {

using std::chrono::milliseconds;

// The server side of the one accepted connection (blocking socket, used only by
// the server thread).
class FakePeer {
 public:
  explicit FakePeer(net::UniqueFd fd) : fd_(std::move(fd)) {}

  // The next whole client frame; throws after `timeout` or when the client closed.
  codec::Frame ReadFrame(milliseconds timeout = milliseconds(5000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    codec::Frame f;
    for (;;) {
      auto s = decoder_.Next(&f);
      if (s == codec::FrameDecoder::Status::kFrame) return f;
      if (s == codec::FrameDecoder::Status::kBroken) {
        throw std::runtime_error("client sent a broken stream: " + decoder_.error());
      }
      std::string chunk = ReadSome(deadline);
      if (chunk.empty()) throw std::runtime_error("client closed before a whole frame");
      decoder_.Feed(chunk.data(), chunk.size());
    }
  }

  // Raw bytes as they come (for malformed input); empty when the client closed.
  std::string ReadSome(std::chrono::steady_clock::time_point deadline) {
    pollfd p{fd_.get(), POLLIN, 0};
    auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0))) <= 0) {
      throw std::runtime_error("timed out waiting for the client");
    }
    char buf[4096];
    ssize_t n = recv(fd_.get(), buf, sizeof(buf), 0);
    if (n <= 0) return {};
    return std::string(buf, static_cast<size_t>(n));
  }

  // True when the client closes within `timeout` (any data before is discarded).
  bool WaitClientClosed(milliseconds timeout = milliseconds(5000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    try {
      while (!ReadSome(deadline).empty()) {
      }
      return true;
    } catch (const std::runtime_error&) {
      return false;
    }
  }

  void Write(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("fake server write failed");
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }

  static std::string ResponseBytes(const codec::Frame& request, std::string_view body) {
    return codec::EncodeFrame(codec::kFlagResponse, request.header.service, request.header.command,
                              request.header.seq, body);
  }
  static std::string PushBytes(uint16_t service, uint16_t command, std::string_view body) {
    return codec::EncodeFrame(codec::kFlagPush, service, command, 0, body);
  }
  void Respond(const codec::Frame& request, std::string_view body) {
    Write(ResponseBytes(request, body));
  }
  void Push(uint16_t service, uint16_t command, std::string_view body) {
    Write(PushBytes(service, command, body));
  }
  void Close() { fd_.Reset(); }

 private:
  net::UniqueFd fd_;
  codec::FrameDecoder decoder_{codec::FrameDecoder::Sender::kClient};
};

class FakeServer {
 public:
  using Script = std::function<void(FakePeer&)>;

  explicit FakeServer(Script script) {
    listen_fd_.Reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof(a);
    if (bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        listen(listen_fd_.get(), 4) != 0 ||
        getsockname(listen_fd_.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      throw std::runtime_error("fake server cannot listen");
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this, s = std::move(script)] { Serve(s); });
  }
  ~FakeServer() {
    if (thread_.joinable()) thread_.join();
  }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  uint16_t port() const { return port_; }
  // Waits for the script to finish.
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Serve(const Script& script) {
    pollfd p{listen_fd_.get(), POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) {
      ADD_FAILURE() << "fake server: no client connected within 10 s";
      return;
    }
    FakePeer peer(net::UniqueFd(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC)));
    listen_fd_.Reset();
    try {
      script(peer);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "fake server script: " << e.what();
    }
  }

  net::UniqueFd listen_fd_;
  uint16_t port_ = 0;
  std::thread thread_;
};

// A port on 127.0.0.1 that nothing listens on (bound, then released).
inline uint16_t UnusedPort() {
  net::UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// `{code: 0, <key>: <value>}` helpers for scripts.
inline std::string OkWith(std::string_view key, uint64_t value) {
  codec::MapWriter w(2);
  w.Key("code").Int(0);
  w.Key(key).Uint(value);
  return w.Finish();
}

}  // namespace imbus::client::testing
