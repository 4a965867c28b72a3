// Internal to the broker tests. TestPeer: a raw DEALER that speaks the bus protocol
// by hand (czmq style), and BrokerTest: an in-process broker on tcp://127.0.0.1:*
// in a thread of its own. Shared by broker_test.cc and broker_restart_test.cc.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "broker/broker.h"
#include "bus/peer.h"
#include "codec/body.h"
#include "codec/codes.h"
#include "codec/commands.h"

namespace imbus::broker::testing {

using codec::BusType;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

inline constexpr uint16_t kMsg = codec::ToWire(codec::Service::kMsg);
inline constexpr uint16_t kAuth = codec::ToWire(codec::Service::kAuth);

// One raw DEALER peer. While it waits in Recv() it heartbeats (with `load`) so the
// broker keeps it alive; a peer that is not waiting is silent.
class TestPeer {
 public:
  TestPeer(zmq::context_t& ctx, const std::string& endpoint, const std::string& identity)
      : socket_(ctx, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::routing_id, identity);
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  }

  void Send(BusType type, const std::string& meta, const std::string& body = {}) {
    ASSERT_TRUE(bus::SendBus(socket_, {}, type, meta, body));
  }

  // The next message that is not a broker heartbeat, or nullopt after `timeout_ms`.
  std::optional<bus::BusMessage> Recv(int timeout_ms = 3000) {
    const auto end = Clock::now() + milliseconds(timeout_ms);
    while (Clock::now() < end) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, milliseconds(20));
      if (beat && Clock::now() - last_beat_ > milliseconds(50)) {
        bus::SendBus(socket_, {}, BusType::kHeartbeat, codec::PackMeta(codec::Heartbeat{load}), {});
        last_beat_ = Clock::now();
      }
      zmq::message_t part;
      while (socket_.recv(part, zmq::recv_flags::dontwait)) {
        bus::BusMessage m;
        std::string parts[3];
        size_t n = 0;
        parts[n++] = part.to_string();
        while (part.more() && socket_.recv(part, zmq::recv_flags::none)) {
          if (n < 3) parts[n++] = part.to_string();
        }
        m.type = static_cast<BusType>(parts[0][0]);
        m.meta = parts[1];
        m.body = parts[2];
        if (m.type != BusType::kHeartbeat || keep_heartbeats) return m;
      }
    }
    return std::nullopt;
  }

  // Waits for a message of `type` and unpacks its meta into *meta.
  template <class T>
  bool Expect(BusType type, T* meta, std::string* body = nullptr, int timeout_ms = 3000) {
    auto m = Recv(timeout_ms);
    if (!m) return false;
    EXPECT_EQ(static_cast<int>(m->type), static_cast<int>(type));
    if (m->type != type) return false;
    if (body) *body = m->body;
    return codec::UnpackMeta(m->meta, meta);
  }

  codec::StatsMeta Stats() {
    Send(BusType::kStats, {});
    codec::StatsMeta stats;
    EXPECT_TRUE(Expect(BusType::kStats, &stats));
    return stats;
  }

  // READY, then a STATS round trip: when it returns the broker has registered us.
  void Ready(const std::string& role, const std::string& name,
             std::vector<std::string> services = {}, const std::string& host = "127.0.0.1",
             uint16_t port = 7000) {
    codec::Ready ready{role, name, std::move(services), host, port, features};
    Send(BusType::kReady, codec::PackMeta(ready));
    Stats();
  }

  uint32_t load = 0;
  uint32_t features = 0;         // announced in Ready(): 0 is a peer older than batches
  bool beat = true;              // heartbeat while waiting in Recv()
  bool keep_heartbeats = false;  // Recv() returns the broker's heartbeats too

 private:
  zmq::socket_t socket_;
  Clock::time_point last_beat_{};
};

inline std::string TextBody(const std::string& text) {
  codec::MapWriter w(1);
  w.Key("text").Str(text);
  return w.Finish();
}

inline codec::RequestMeta Request(uint16_t service, uint16_t command, uint64_t conn,
                                  uint32_t seq = 1) {
  codec::RequestMeta r;
  r.conn = conn;
  r.seq = seq;
  r.service = service;
  r.command = command;
  return r;
}

// The items of a message as a receiver handles them: a kBatch's items in order
// (nullopt when the batch is malformed), anything else as its one item.
inline std::optional<std::vector<bus::BusMessage>> Items(const bus::BusMessage& m) {
  if (m.type != BusType::kBatch) return std::vector<bus::BusMessage>{m};
  std::vector<bus::BusMessage> out;
  codec::BatchReader reader(m.body);
  BusType type{};
  std::string_view meta, body;
  while (reader.Next(&type, &meta, &body)) {
    out.push_back(bus::BusMessage{type, std::string(meta), std::string(body)});
  }
  if (!reader.ok()) return std::nullopt;
  return out;
}

inline codec::ReplyMeta ReplyTo(const codec::RequestMeta& req) { return codec::ReplyMetaFor(req); }

// {code, error} of a reply body.
inline std::pair<int64_t, std::string> CodeOf(const std::string& body) {
  codec::Body parsed;
  std::string error;
  EXPECT_TRUE(codec::Body::Parse(body, &parsed, &error)) << error;
  return {parsed.GetInt("code").value_or(-1), parsed.GetString("error").value_or("")};
}

class BrokerTest : public ::testing::Test {
 protected:
  void Start(Options options = {}) {
    options.bind = "tcp://127.0.0.1:*";
    broker_ = std::make_unique<Broker>(ctx_, options);
    ASSERT_NE(broker_->endpoint().find("tcp://127.0.0.1:"), std::string::npos);
    thread_ = std::thread([this] { broker_->Run(stop_); });
  }
  // Stops the loop; counters() may be read afterwards.
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void TearDown() override { Stop(); }

  std::unique_ptr<TestPeer> Peer(const std::string& identity) {
    return std::make_unique<TestPeer>(ctx_, broker_->endpoint(), identity);
  }

  zmq::context_t ctx_;
  std::unique_ptr<Broker> broker_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace imbus::broker::testing
