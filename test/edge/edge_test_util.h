// Test support for edge tests: a fake broker made of a raw ROUTER socket (the real
// broker is not needed), a blocking test client speaking frames, and an in-process
// edge with test-friendly options.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "bus/peer.h"
#include "codec/body.h"
#include "codec/bus.h"
#include "codec/commands.h"
#include "codec/frame.h"
#include "codec/frame_decoder.h"
#include "edge/edge_server.h"

namespace imbus::edge::testing {

using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;

struct BusMsg {
  std::string identity;
  codec::BusType type = codec::BusType::kHeartbeat;
  std::string meta;
  std::string body;
  int repeat = 1;  // FakeBroker::SendRepeated
};

// A ROUTER on tcp://127.0.0.1:* served by its own thread: it heartbeats every peer
// that said READY (so edges never think it dead), queues everything else for the
// test, and sends what the test asks. Thread-safe.
class FakeBroker {
 public:
  FakeBroker() : socket_(ctx_, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::router_mandatory, 1);
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeBroker() {
    stop_ = true;
    thread_.join();
  }
  const std::string& endpoint() const { return endpoint_; }

  // The next message of `type` (other types stay queued), or nullopt after `timeout`.
  std::optional<BusMsg> Expect(codec::BusType type, Ms timeout = 5000ms) {
    std::unique_lock lock(mu_);
    std::optional<BusMsg> found;
    cv_.wait_for(lock, timeout, [&] {
      for (auto it = in_.begin(); it != in_.end(); ++it) {
        if (it->type == type) {
          found = std::move(*it);
          in_.erase(it);
          return true;
        }
      }
      return false;
    });
    return found;
  }
  void Send(const std::string& identity, codec::BusType type, std::string meta,
            std::string body = {}) {
    std::lock_guard lock(mu_);
    out_.push_back(BusMsg{identity, type, std::move(meta), std::move(body), 1});
    ++unsent_;
  }
  // Sends the same message `count` times from the broker thread, waiting (not
  // dropping) when the peer's queue is full; only one copy is held here.
  void SendRepeated(const std::string& identity, codec::BusType type, std::string meta,
                    std::string body, int count) {
    std::lock_guard lock(mu_);
    out_.push_back(BusMsg{identity, type, std::move(meta), std::move(body), count});
    ++unsent_;
  }
  // Waits until everything given to Send/SendRepeated went out.
  bool WaitAllSent(Ms timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (unsent_ > 0) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }
  // Waits for a READY and returns the edge identity that sent it.
  std::string WaitReady() {
    auto m = Expect(codec::BusType::kReady);
    EXPECT_TRUE(m.has_value()) << "no READY from the edge";
    return m ? m->identity : std::string();
  }

 private:
  void Loop() {
    auto next_hb = std::chrono::steady_clock::now();
    while (!stop_) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, 5ms);
      while (true) {
        zmq::message_t part;
        if (!socket_.recv(part, zmq::recv_flags::dontwait)) break;
        std::vector<std::string> parts{part.to_string()};
        while (part.more()) {
          (void)socket_.recv(part, zmq::recv_flags::none);
          parts.push_back(part.to_string());
        }
        if (parts.size() < 3 || parts[1].size() != 1) continue;
        BusMsg m{parts[0], static_cast<codec::BusType>(parts[1][0]), parts[2],
                 parts.size() > 3 ? parts[3] : std::string(), 1};
        if (m.type == codec::BusType::kHeartbeat) continue;
        if (m.type == codec::BusType::kReady) peers_.insert(m.identity);
        std::lock_guard lock(mu_);
        in_.push_back(std::move(m));
        cv_.notify_all();
      }
      std::deque<BusMsg> out;
      {
        std::lock_guard lock(mu_);
        out.swap(out_);
      }
      for (auto& m : out) {
        for (int i = 0; i < m.repeat && !stop_;) {
          if (bus::SendBus(socket_, m.identity, m.type, m.meta, m.body)) {
            ++i;
          } else if (m.repeat == 1) {
            break;  // unknown peer: dropped, like a real ROUTER would
          } else {
            std::this_thread::sleep_for(1ms);  // HWM: wait for the edge to drain
          }
        }
        --unsent_;
      }
      if (std::chrono::steady_clock::now() >= next_hb) {
        for (const auto& p : peers_) {
          bus::SendBus(socket_, p, codec::BusType::kHeartbeat, codec::PackMeta(codec::Heartbeat{}),
                       {});
        }
        next_hb += 100ms;
      }
    }
  }

  zmq::context_t ctx_{1};
  zmq::socket_t socket_;
  std::string endpoint_;
  std::set<std::string> peers_;  // loop thread only
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<BusMsg> in_, out_;
  std::atomic<int> unsent_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A blocking client on 127.0.0.1. Not thread-safe.
class TestClient {
 public:
  explicit TestClient(uint16_t port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  }
  ~TestClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  uint16_t local_port() const {
    sockaddr_in a{};
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
  }
  void Close() {
    ::close(fd_);
    fd_ = -1;
  }

  bool SendRaw(std::string_view bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  bool SendFrame(uint16_t service, uint16_t command, uint32_t seq,
                 std::string_view body = codec::EmptyBody(), uint16_t flags = 0) {
    return SendRaw(codec::EncodeFrame(flags, service, command, seq, body));
  }

  // The next frame from the edge, or nullopt on timeout / close / broken stream.
  std::optional<codec::Frame> ReadFrame(Ms timeout = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    codec::Frame f;
    for (;;) {
      if (decoder_.Next(&f) == codec::FrameDecoder::Status::kFrame) return f;
      if (!WaitInput(deadline)) return std::nullopt;
      char buf[65536];
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return std::nullopt;
      decoder_.Feed(buf, static_cast<size_t>(n));
    }
  }
  // True when the edge closes the connection within `timeout` (input is discarded).
  bool WaitClosed(Ms timeout = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (!WaitInput(deadline)) return false;
      char buf[65536];
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return true;
    }
  }

 private:
  bool WaitInput(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<Ms>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(left.count())) > 0;
  }

  int fd_ = -1;
  bool connected_ = false;
  codec::FrameDecoder decoder_{codec::FrameDecoder::Sender::kServer, 1u << 24};
};

inline int64_t CodeOf(const codec::Frame& f) {
  codec::Body b;
  std::string err;
  if (!codec::Body::Parse(f.body, &b, &err)) return -1;
  return b.GetInt("code").value_or(-1);
}

inline codec::Body ParseBody(const std::string& bytes) {
  codec::Body b;
  std::string err;
  EXPECT_TRUE(codec::Body::Parse(bytes, &b, &err)) << err;
  return b;
}

inline EdgeOptions TestOptions(const std::string& broker) {
  EdgeOptions o;
  o.listen_host = "127.0.0.1";
  o.listen_port = 0;
  o.broker = broker;
  o.name = "edge-test";
  o.heartbeat_ms = 200;
  o.request_timeout_ms = 5000;
  return o;
}

// Resident set size of this process in KiB.
inline long RssKib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace imbus::edge::testing
