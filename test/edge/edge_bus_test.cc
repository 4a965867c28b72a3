// The edge against a fake broker: what it answers itself, what it forwards, and how
// replies, pushes, kicks and session bindings flow back (docs/bus.md, edge side).
#include <gtest/gtest.h>

#include "test/edge/edge_test_util.h"

namespace imbus::edge::testing {
namespace {

using codec::BusType;
constexpr uint16_t kSys = codec::ToWire(codec::Service::kSys);
constexpr uint16_t kAuth = codec::ToWire(codec::Service::kAuth);
constexpr uint16_t kDirectory = codec::ToWire(codec::Service::kDirectory);
constexpr uint16_t kMsg = codec::ToWire(codec::Service::kMsg);

class EdgeBusTest : public ::testing::Test {
 protected:
  void StartEdge(EdgeOptions o) {
    server_ = std::make_unique<EdgeServer>(std::move(o));
    server_->Start();
    identity_ = broker_.WaitReady();
  }
  void SetUp() override { StartEdge(TestOptions(broker_.endpoint())); }

  // Sends a request and returns the REQUEST the broker got for it.
  std::pair<codec::RequestMeta, std::string> Forwarded(TestClient& c, uint16_t service,
                                                       uint16_t command, uint32_t seq,
                                                       const std::string& body) {
    EXPECT_TRUE(c.SendFrame(service, command, seq, body));
    auto m = broker_.Expect(BusType::kRequest);
    EXPECT_TRUE(m.has_value()) << "request not forwarded";
    codec::RequestMeta meta;
    if (m) {
      EXPECT_TRUE(codec::UnpackMeta(m->meta, &meta));
    }
    return {meta, m ? m->body : std::string()};
  }
  void Reply(const codec::RequestMeta& req, const std::string& body,
             codec::SessionAction action = codec::SessionAction::kNone,
             codec::SessionInfo session = {}) {
    codec::ReplyMeta r = codec::ReplyMetaFor(req);
    r.rid = 1;
    r.action = static_cast<uint8_t>(action);
    r.session = std::move(session);
    broker_.Send(identity_, BusType::kReply, codec::PackMeta(r), body);
  }
  // Logs `c` in as uid 42 on device "phone"; returns its connection id.
  uint64_t LogIn(TestClient& c) {
    codec::MapWriter w(2);
    w.Key("name").Str("alice");
    w.Key("password").Str("secret1");
    auto [req, body] = Forwarded(c, kAuth, codec::auth::kLogin, 100, w.Finish());
    codec::SessionInfo s;
    s.uid = 42;
    s.device = "phone";
    s.name = "alice";
    Reply(req, codec::OkBody(), codec::SessionAction::kLogin, s);
    auto f = c.ReadFrame();
    EXPECT_TRUE(f.has_value());
    if (f) {
      EXPECT_EQ(CodeOf(*f), 0);
    }
    return req.conn;
  }

  FakeBroker broker_;
  std::unique_ptr<EdgeServer> server_;
  std::string identity_;
};

TEST_F(EdgeBusTest, ReadyAnnouncesTheAdvertisedAddress) {
  // SetUp consumed the first READY; a fresh edge shows its contents.
  auto o = TestOptions(broker_.endpoint());
  o.name = "edge-two";
  EdgeServer two(o);
  two.Start();
  auto m = broker_.Expect(BusType::kReady);
  ASSERT_TRUE(m.has_value());
  codec::Ready r;
  ASSERT_TRUE(codec::UnpackMeta(m->meta, &r));
  EXPECT_EQ(r.role, "edge");
  EXPECT_EQ(r.name, "edge-two");
  EXPECT_EQ(r.host, "127.0.0.1");
  EXPECT_EQ(r.port, two.port());
  EXPECT_EQ(m->identity.rfind("edge-two/0/", 0), 0u) << m->identity;
}

TEST_F(EdgeBusTest, PingAndHelloAnsweredByTheEdge) {
  TestClient c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.SendFrame(kSys, codec::sys::kPing, 11));
  auto f = c.ReadFrame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->header.flags, codec::kFlagResponse);
  EXPECT_EQ(f->header.service, kSys);
  EXPECT_EQ(f->header.command, codec::sys::kPing);
  EXPECT_EQ(f->header.seq, 11u);
  auto b = ParseBody(f->body);
  EXPECT_EQ(b.GetInt("code"), 0);
  const int64_t now_ms =
      std::chrono::duration_cast<Ms>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_NEAR(static_cast<double>(b.GetInt("ts").value_or(0)), static_cast<double>(now_ms), 5000);

  ASSERT_TRUE(c.SendFrame(kSys, codec::sys::kHello, 12));
  f = c.ReadFrame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->header.seq, 12u);
  auto h = ParseBody(f->body);
  EXPECT_EQ(h.GetInt("code"), 0);
  EXPECT_EQ(h.GetString("server"), "imbus-edge");
  EXPECT_EQ(h.GetInt("version"), 1);
  EXPECT_EQ(h.GetInt("max_frame"), 65536);
  EXPECT_EQ(h.GetInt("idle_timeout_s"), 30);
  // Nothing of this reached the broker.
  EXPECT_FALSE(broker_.Expect(BusType::kRequest, 200ms).has_value());
}

TEST_F(EdgeBusTest, RequestForwardedWithMetaAndReplyReachesClient) {
  TestClient c(server_->port());
  codec::MapWriter w(2);
  w.Key("name").Str("bob");
  w.Key("password").Str("hunter22");
  const std::string body = w.Finish();
  auto [req, fwd_body] = Forwarded(c, kAuth, codec::auth::kRegister, 7, body);
  EXPECT_EQ(fwd_body, body);  // verbatim
  EXPECT_EQ(req.rid, 0u);
  EXPECT_NE(req.conn, 0u);
  EXPECT_EQ(req.seq, 7u);
  EXPECT_EQ(req.service, kAuth);
  EXPECT_EQ(req.command, codec::auth::kRegister);
  EXPECT_EQ(req.uid, 0u);
  EXPECT_EQ(req.peer_host, "127.0.0.1");
  EXPECT_EQ(req.peer_port, c.local_port());

  codec::MapWriter rw(2);
  rw.Key("code").Int(0);
  rw.Key("uid").Uint(5);
  const std::string reply = rw.Finish();
  Reply(req, reply);
  auto f = c.ReadFrame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->header.flags, codec::kFlagResponse);
  EXPECT_EQ(f->header.service, kAuth);
  EXPECT_EQ(f->header.command, codec::auth::kRegister);
  EXPECT_EQ(f->header.seq, 7u);
  EXPECT_EQ(f->body, reply);

  // SYS/ROUTE is the broker's too.
  auto [route, rb] = Forwarded(c, kSys, codec::sys::kRoute, 8, codec::EmptyBody());
  EXPECT_EQ(route.command, codec::sys::kRoute);
}

TEST_F(EdgeBusTest, LoginActionOpensLoginOnlyCommandsAndLogoutClosesThem) {
  TestClient c(server_->port());
  ASSERT_TRUE(c.SendFrame(kDirectory, codec::directory::kListFriends, 1));
  auto f = c.ReadFrame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(CodeOf(*f), static_cast<int>(codec::Code::kUnauthenticated));
  EXPECT_EQ(f->header.seq, 1u);
  EXPECT_FALSE(broker_.Expect(BusType::kRequest, 200ms).has_value());

  const uint64_t conn = LogIn(c);
  auto [req, body] =
      Forwarded(c, kDirectory, codec::directory::kListFriends, 2, codec::EmptyBody());
  EXPECT_EQ(req.conn, conn);
  EXPECT_EQ(req.uid, 42u);
  EXPECT_EQ(req.device, "phone");
  Reply(req, codec::OkBody());
  ASSERT_TRUE(c.ReadFrame().has_value());

  auto [out, ob] = Forwarded(c, kAuth, codec::auth::kLogout, 3, codec::EmptyBody());
  Reply(out, codec::OkBody(), codec::SessionAction::kLogout);
  ASSERT_TRUE(c.ReadFrame().has_value());
  ASSERT_TRUE(c.SendFrame(kDirectory, codec::directory::kListFriends, 4));
  f = c.ReadFrame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(CodeOf(*f), static_cast<int>(codec::Code::kUnauthenticated));
}

TEST_F(EdgeBusTest, UnknownPushAndP2pCommandsAreUnsupported) {
  TestClient c(server_->port());
  const std::pair<uint16_t, uint16_t> bad[] = {
      {99, 1},                                                    // no such service
      {kSys, 77},                                                 // no such command
      {kAuth, codec::auth::kKicked},                              // a push
      {kSys, codec::sys::kError},                                 // server-only
      {codec::ToWire(codec::Service::kP2p), codec::p2p::kHello},  // between clients
  };
  uint32_t seq = 1;
  for (auto [service, command] : bad) {
    ASSERT_TRUE(c.SendFrame(service, command, seq));
    auto f = c.ReadFrame();
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->header.seq, seq);
    EXPECT_EQ(f->header.flags, codec::kFlagResponse);  // also for 1/65535: not the fatal one
    EXPECT_EQ(f->header.service, service);
    EXPECT_EQ(CodeOf(*f), static_cast<int>(codec::Code::kUnsupported)) << service << "/" << command;
    ++seq;
  }
  EXPECT_FALSE(broker_.Expect(BusType::kRequest, 200ms).has_value());
}

TEST_F(EdgeBusTest, PushDeliveredToEachListedConnection) {
  TestClient a(server_->port()), b(server_->port()), other(server_->port());
  auto [ra, ba] = Forwarded(a, kSys, codec::sys::kRoute, 1, codec::EmptyBody());
  auto [rb, bb] = Forwarded(b, kSys, codec::sys::kRoute, 1, codec::EmptyBody());
  ASSERT_NE(ra.conn, rb.conn);
  codec::EdgePushMeta p;
  p.conns = {ra.conn, rb.conn, 999999};  // a gone connection is skipped
  p.service = kMsg;
  p.command = codec::msg::kMessage;
  codec::MapWriter w(1);
  w.Key("text").Str("hi");
  const std::string body = w.Finish();
  broker_.Send(identity_, BusType::kPush, codec::PackMeta(p), body);
  for (TestClient* c : {&a, &b}) {
    auto f = c->ReadFrame();
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->header.flags, codec::kFlagPush);
    EXPECT_EQ(f->header.seq, 0u);
    EXPECT_EQ(f->header.service, kMsg);
    EXPECT_EQ(f->header.command, codec::msg::kMessage);
    EXPECT_EQ(f->body, body);
  }
  EXPECT_FALSE(other.ReadFrame(200ms).has_value());
}

// Frames for clients are queued while the edge reads a burst from the bus and written
// after it. A burst bigger than the output limit still reaches a client that reads:
// the queue is written out whenever the next frame would not fit.
TEST_F(EdgeBusTest, BurstOfPushesLargerThanTheOutputLimitReachesAReadingClient) {
  auto o = TestOptions(broker_.endpoint());
  o.name = "edge-burst";
  o.max_output_bytes = 64 * 1024;
  EdgeServer edge(o);
  edge.Start();
  const std::string id = broker_.WaitReady();
  TestClient c(edge.port());
  ASSERT_TRUE(c.SendFrame(kSys, codec::sys::kRoute, 1, codec::EmptyBody()));
  auto req = broker_.Expect(BusType::kRequest);
  ASSERT_TRUE(req.has_value());
  codec::RequestMeta meta;
  ASSERT_TRUE(codec::UnpackMeta(req->meta, &meta));
  constexpr int kPushes = 300;  // ~600 KiB, ten times the limit
  for (int i = 0; i < kPushes; ++i) {
    codec::EdgePushMeta p;
    p.conns = {meta.conn};
    p.service = kMsg;
    p.command = codec::msg::kMessage;
    codec::MapWriter w(2);
    w.Key("i").Int(i).Key("text").Str(std::string(2000, 'x'));
    broker_.Send(id, BusType::kPush, codec::PackMeta(p), w.Finish());
  }
  for (int i = 0; i < kPushes; ++i) {
    auto f = c.ReadFrame();
    ASSERT_TRUE(f.has_value()) << "push " << i << " missing";
    EXPECT_EQ(ParseBody(f->body).GetInt("i"), i);
  }
  EXPECT_EQ(edge.Stats().closed_slow_reader, 0u);
  // Still served.
  ASSERT_TRUE(c.SendFrame(kSys, codec::sys::kPing, 2));
  auto pong = c.ReadFrame();
  ASSERT_TRUE(pong.has_value());
  EXPECT_EQ(pong->header.seq, 2u);
}

TEST_F(EdgeBusTest, KickPushesKickedThenCloses) {
  TestClient c(server_->port());
  const uint64_t conn = LogIn(c);
  broker_.Send(identity_, BusType::kKick,
               codec::PackMeta(codec::KickMeta{conn, "logged in elsewhere"}));
  auto f = c.ReadFrame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->header.flags, codec::kFlagPush);
  EXPECT_EQ(f->header.service, kAuth);
  EXPECT_EQ(f->header.command, codec::auth::kKicked);
  EXPECT_EQ(ParseBody(f->body).GetString("reason"), "logged in elsewhere");
  EXPECT_TRUE(c.WaitClosed(3000ms));
  // The broker already forgot the session: no UNBIND.
  EXPECT_FALSE(broker_.Expect(BusType::kUnbind, 300ms).has_value());
  EXPECT_EQ(server_->Stats().kicked, 1u);
}

TEST_F(EdgeBusTest, UnbindWhenLoggedInClientDisconnects) {
  TestClient anonymous(server_->port());
  ASSERT_TRUE(anonymous.SendFrame(kSys, codec::sys::kPing, 1));
  ASSERT_TRUE(anonymous.ReadFrame().has_value());
  anonymous.Close();
  EXPECT_FALSE(broker_.Expect(BusType::kUnbind, 300ms).has_value());

  TestClient c(server_->port());
  const uint64_t conn = LogIn(c);
  c.Close();
  auto m = broker_.Expect(BusType::kUnbind);
  ASSERT_TRUE(m.has_value());
  codec::UnbindMeta u;
  ASSERT_TRUE(codec::UnpackMeta(m->meta, &u));
  EXPECT_EQ(u.conn, conn);
}

TEST_F(EdgeBusTest, BindResentAfterUnknownPeer) {
  TestClient c(server_->port());
  const uint64_t conn = LogIn(c);
  broker_.Send(identity_, BusType::kUnknownPeer, std::string());
  ASSERT_TRUE(broker_.Expect(BusType::kReady).has_value());
  auto m = broker_.Expect(BusType::kBind);
  ASSERT_TRUE(m.has_value());
  codec::BindMeta b;
  ASSERT_TRUE(codec::UnpackMeta(m->meta, &b));
  EXPECT_EQ(b.conn, conn);
  EXPECT_EQ(b.session.uid, 42u);
  EXPECT_EQ(b.session.device, "phone");
  EXPECT_EQ(b.session.public_host, "127.0.0.1");  // filled in by the edge
}

TEST_F(EdgeBusTest, ABrokerThatForgotUsGetsOneReadyRebindsAndDepartedAndInFlightIsAnswered) {
  // The broker we were announced to (incarnation 555) accepted us.
  broker_.Send(identity_, BusType::kHeartbeat, codec::PackMeta(codec::Heartbeat{0, 555}));
  TestClient stays(server_->port());
  const uint64_t stays_conn = LogIn(stays);
  auto leaves = std::make_unique<TestClient>(server_->port());
  const uint64_t left_conn = LogIn(*leaves);
  leaves.reset();
  ASSERT_TRUE(broker_.Expect(BusType::kUnbind).has_value());
  auto [req, body] =
      Forwarded(stays, kDirectory, codec::directory::kListUsers, 7, codec::EmptyBody());
  (void)body;

  // A new broker (incarnation 777) does not know us; every message we sent before our
  // READY reached it draws the same answer.
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) {
    broker_.Send(identity_, BusType::kUnknownPeer, codec::PackMeta(codec::Heartbeat{0, 777}));
  }
  auto f = stays.ReadFrame(3000ms);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->header.seq, 7u);
  EXPECT_EQ(CodeOf(*f), static_cast<int>(codec::Code::kUnavailable));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2000ms) << "answered at the deadline";
  EXPECT_EQ(server_->Stats().timeouts, 0u);

  ASSERT_TRUE(broker_.Expect(BusType::kReady).has_value());
  auto bind = broker_.Expect(BusType::kBind);
  ASSERT_TRUE(bind.has_value());
  codec::BindMeta b;
  ASSERT_TRUE(codec::UnpackMeta(bind->meta, &b));
  EXPECT_EQ(b.conn, stays_conn);
  EXPECT_EQ(b.bound_at, 555u);
  auto departed = broker_.Expect(BusType::kDeparted);
  ASSERT_TRUE(departed.has_value());
  codec::DepartedMeta d;
  ASSERT_TRUE(codec::UnpackMeta(departed->meta, &d));
  EXPECT_EQ(d.bound_at, 555u);
  ASSERT_EQ(d.sessions.size(), 1u);
  EXPECT_EQ(d.sessions[0].conn, left_conn);
  EXPECT_EQ(d.sessions[0].uid, 42u);
  // Announced once, not once per UNKNOWN_PEER.
  EXPECT_FALSE(broker_.Expect(BusType::kReady, 500ms).has_value());
}

TEST_F(EdgeBusTest, LoginReplyForGoneConnectionIsUnbound) {
  auto c = std::make_unique<TestClient>(server_->port());
  auto [req, body] = Forwarded(*c, kAuth, codec::auth::kLogin, 1, codec::EmptyBody());
  c.reset();
  codec::SessionInfo s;
  s.uid = 9;
  std::this_thread::sleep_for(200ms);  // let the edge see the close
  Reply(req, codec::OkBody(), codec::SessionAction::kLogin, s);
  auto m = broker_.Expect(BusType::kUnbind);
  ASSERT_TRUE(m.has_value());
  codec::UnbindMeta u;
  ASSERT_TRUE(codec::UnpackMeta(m->meta, &u));
  EXPECT_EQ(u.conn, req.conn);
}

TEST(EdgeTimeoutTest, NoReplyAnsweredUnavailableAfterRequestTimeout) {
  FakeBroker broker;
  auto o = TestOptions(broker.endpoint());
  o.request_timeout_ms = 300;
  EdgeServer server(o);
  server.Start();
  const std::string identity = broker.WaitReady();
  TestClient c(server.port());
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.SendFrame(kAuth, codec::auth::kRegister, 5));
  auto m = broker.Expect(BusType::kRequest);
  ASSERT_TRUE(m.has_value());
  auto f = c.ReadFrame(3000ms);
  ASSERT_TRUE(f.has_value());
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 250ms);
  EXPECT_LT(waited, 2000ms);
  EXPECT_EQ(f->header.seq, 5u);
  EXPECT_EQ(f->header.service, kAuth);
  EXPECT_EQ(f->header.command, codec::auth::kRegister);
  EXPECT_EQ(CodeOf(*f), static_cast<int>(codec::Code::kUnavailable));
  // The late reply is dropped: exactly one response per request.
  codec::RequestMeta req;
  ASSERT_TRUE(codec::UnpackMeta(m->meta, &req));
  const codec::ReplyMeta r = codec::ReplyMetaFor(req);
  broker.Send(identity, BusType::kReply, codec::PackMeta(r), codec::OkBody());
  EXPECT_FALSE(c.ReadFrame(400ms).has_value());
  EXPECT_EQ(server.Stats().timeouts, 1u);
}

}  // namespace
}  // namespace imbus::edge::testing
