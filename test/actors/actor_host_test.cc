// The actor host end to end: a real ActorHost (auth, 1 worker thread) on its own
// private MariaDB, driven by a fake broker (a raw ROUTER on tcp://127.0.0.1:*).
#include "actors/actor_host.h"

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "bus/peer.h"
#include "codec/body.h"
#include "codec/bus.h"
#include "codec/commands.h"
#include "test/support/mariadb.h"

namespace imbus::actors {
namespace {

using codec::BusType;
using codec::Code;
using Clock = std::chrono::steady_clock;

struct Answer {
  codec::ReplyMeta meta;
  int code = -1;
  codec::Body body;
};

// The broker side of the bus, just enough to hand out requests and read replies.
class FakeBroker {
 public:
  FakeBroker() : router_(ctx_, zmq::socket_type::router) {
    router_.set(zmq::sockopt::router_mandatory, 1);
    router_.set(zmq::sockopt::linger, 0);
    router_.bind("tcp://127.0.0.1:*");
    endpoint_ = router_.get(zmq::sockopt::last_endpoint);
  }
  const std::string& endpoint() const { return endpoint_; }

  // Waits for a worker's READY; returns its services.
  std::vector<std::string> WaitReady() {
    codec::Ready ready;
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      std::string id, meta, body;
      BusType type;
      if (!Recv(200, &id, &type, &meta, &body)) continue;
      if (type == BusType::kReady && codec::UnpackMeta(meta, &ready)) {
        worker_ = id;
        EXPECT_EQ(ready.role, "worker");
        return ready.services;
      }
    }
    ADD_FAILURE() << "no READY from the worker";
    return {};
  }

  Answer Call(uint16_t command, const std::string& body) {
    codec::RequestMeta m;
    m.rid = ++rid_;
    m.conn = 1000 + rid_;
    m.seq = static_cast<uint32_t>(rid_ * 10);
    m.service = codec::ToWire(codec::Service::kAuth);
    m.command = command;
    m.peer_host = "198.51.100.7";
    m.peer_port = 50123;
    Answer a;
    if (!bus::SendBus(router_, worker_, BusType::kRequest, codec::PackMeta(m), body)) {
      ADD_FAILURE() << "could not send to the worker";
      return a;
    }
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline) {
      std::string id, meta, rbody;
      BusType type;
      // Keep the worker's broker-liveness satisfied while we wait.
      bus::SendBus(router_, worker_, BusType::kHeartbeat, codec::PackMeta(codec::Heartbeat{}), {});
      if (!Recv(300, &id, &type, &meta, &rbody)) continue;
      if (type == BusType::kReady) worker_ = id;  // it reconnected
      if (type != BusType::kReply) continue;
      EXPECT_TRUE(codec::UnpackMeta(meta, &a.meta));
      EXPECT_EQ(a.meta.rid, m.rid);
      EXPECT_EQ(a.meta.conn, m.conn);
      EXPECT_EQ(a.meta.seq, m.seq);
      EXPECT_EQ(a.meta.service, m.service);
      EXPECT_EQ(a.meta.command, m.command);
      std::string err;
      EXPECT_TRUE(codec::Body::Parse(rbody, &a.body, &err)) << err;
      a.code = static_cast<int>(a.body.GetInt("code").value_or(-1));
      return a;
    }
    ADD_FAILURE() << "no REPLY within 30 s";
    return a;
  }

 private:
  bool Recv(int timeout_ms, std::string* id, BusType* type, std::string* meta, std::string* body) {
    zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms));
    if ((item.revents & ZMQ_POLLIN) == 0) return false;
    std::vector<std::string> parts;
    zmq::message_t part;
    do {
      if (!router_.recv(part, zmq::recv_flags::none)) return false;
      parts.push_back(part.to_string());
    } while (part.more());
    if (parts.size() < 3 || parts[1].size() != 1) return false;
    *id = parts[0];
    *type = static_cast<BusType>(parts[1][0]);
    *meta = parts[2];
    *body = parts.size() > 3 ? parts[3] : std::string();
    return true;
  }

  zmq::context_t ctx_{1};
  zmq::socket_t router_;
  std::string endpoint_;
  std::string worker_;
  uint64_t rid_ = 0;
};

std::string NamePassword(const std::string& name, const std::string& password) {
  codec::MapWriter w(2);
  w.Key("name").Str(name);
  w.Key("password").Str(password);
  return w.Finish();
}

TEST(ActorHostTest, ServesAuthAndSurvivesTheDatabaseGoingAway) {
  imbus::testing::MariaDbServer server;
  ASSERT_TRUE(server.Start());
  FakeBroker broker;

  ActorHost::Options o;
  o.services = {"auth"};
  o.broker = broker.endpoint();
  o.threads = 1;
  o.heartbeat_ms = 2000;
  o.db.socket = server.socket_path();
  o.db.database = "imbus_host_test";
  o.db_wait_s = 10;
  o.service_options.pwhash_ops = 1;
  o.service_options.pwhash_mem = 8192;
  ActorHost host(o, BuiltinServices());
  ASSERT_NO_THROW(host.Start());
  std::atomic<bool> stop{false};
  std::thread runner([&] { host.Run(stop); });

  EXPECT_EQ(broker.WaitReady(), std::vector<std::string>{"auth"});

  Answer reg = broker.Call(codec::auth::kRegister, NamePassword("ivy", "secret1"));
  ASSERT_EQ(reg.code, 0);
  const uint64_t uid = reg.body.GetUint("uid").value_or(0);
  EXPECT_GT(uid, 0u);
  EXPECT_EQ(reg.meta.action, 0);

  Answer login = broker.Call(codec::auth::kLogin, NamePassword("ivy", "secret1"));
  ASSERT_EQ(login.code, 0);
  EXPECT_EQ(login.meta.action, static_cast<uint8_t>(codec::SessionAction::kLogin));
  EXPECT_EQ(login.meta.session.uid, uid);
  EXPECT_EQ(login.meta.session.name, "ivy");
  EXPECT_EQ(login.meta.session.device, "default");
  EXPECT_EQ(login.meta.session.public_host, "198.51.100.7");
  EXPECT_EQ(login.meta.session.public_port, 50123);

  EXPECT_EQ(broker.Call(codec::auth::kLogin, std::string("\xc1", 1)).code,
            static_cast<int>(Code::kBadRequest));
  EXPECT_EQ(broker.Call(999, codec::EmptyBody()).code, static_cast<int>(Code::kUnsupported));

  server.Stop();
  Answer down = broker.Call(codec::auth::kLogin, NamePassword("ivy", "secret1"));
  EXPECT_EQ(down.code, static_cast<int>(Code::kUnavailable));
  EXPECT_EQ(down.body.GetString("error"), "database unavailable");

  ASSERT_TRUE(server.Start());
  Answer back = broker.Call(codec::auth::kLogin, NamePassword("ivy", "secret1"));
  EXPECT_EQ(back.code, 0);
  EXPECT_EQ(back.meta.session.uid, uid);

  stop = true;
  runner.join();
}

TEST(ActorHostTest, StartupErrorsAreClear) {
  ActorHost::Options o;
  o.services = {"auth", "nope"};
  ActorHost bad_service(o, BuiltinServices());
  try {
    bad_service.Start();
    ADD_FAILURE() << "expected a startup error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos) << e.what();
  }
  o.services = {"auth"};
  o.db.socket = "/nonexistent/mysqld.sock";
  o.db_wait_s = 0;
  o.service_options.pwhash_ops = 1;
  o.service_options.pwhash_mem = 8192;
  ActorHost no_db(o, BuiltinServices());
  EXPECT_THROW(no_db.Start(), std::runtime_error);
}

}  // namespace
}  // namespace imbus::actors
