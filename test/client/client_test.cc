// Client: the request bodies it builds and the responses it parses, against a
// scripted fake server.
#include "client/client.h"

#include <gtest/gtest.h>

#include "codec/codes.h"
#include "codec/commands.h"
#include "test/client/fake_server.h"

namespace imbus::client {
namespace {

using std::chrono::milliseconds;
using testing::FakePeer;
using testing::FakeServer;

constexpr uint16_t kSys = codec::ToWire(codec::Service::kSys);
constexpr uint16_t kAuth = codec::ToWire(codec::Service::kAuth);

codec::Body ParseBody(const codec::Frame& f) {
  codec::Body b;
  std::string err;
  EXPECT_TRUE(codec::Body::Parse(f.body, &b, &err)) << err;
  return b;
}

Client ConnectTo(const FakeServer& server) {
  Client c(milliseconds(5000));
  std::string error;
  EXPECT_TRUE(c.Connect("127.0.0.1", server.port(), &error)) << error;
  return c;
}

TEST(ClientTest, RegisterSendsNameAndPasswordAndReturnsUid) {
  FakeServer server([](FakePeer& peer) {
    codec::Frame req = peer.ReadFrame();
    EXPECT_EQ(req.header.service, kAuth);
    EXPECT_EQ(req.header.command, codec::auth::kRegister);
    EXPECT_EQ(req.header.flags, 0);
    codec::Body b = ParseBody(req);
    EXPECT_EQ(b.GetString("name"), "alice");
    EXPECT_EQ(b.GetString("password"), "secret1");
    peer.Respond(req, testing::OkWith("uid", 42));
    peer.WaitClientClosed();
  });
  Client c = ConnectTo(server);
  Result<uint64_t> r = c.Register("alice", "secret1");
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.value, 42u);
}

TEST(ClientTest, LoginByNameWithDeviceRemembersTheSession) {
  FakeServer server([](FakePeer& peer) {
    codec::Frame req = peer.ReadFrame();
    codec::Body b = ParseBody(req);
    EXPECT_EQ(b.GetString("name"), "alice");
    EXPECT_FALSE(b.Has("uid"));
    EXPECT_EQ(b.GetString("device"), "phone");
    EXPECT_EQ(b.GetUint("p2p_port"), 5555u);
    codec::MapWriter w(4);
    w.Key("code").Int(0);
    w.Key("uid").Uint(42);
    w.Key("name").Str("alice");
    w.Key("token").Str("tok-1");
    peer.Respond(req, w.Finish());
    codec::Frame logout = peer.ReadFrame();
    EXPECT_EQ(logout.header.command, codec::auth::kLogout);
    peer.Respond(logout, codec::OkBody());
    peer.WaitClientClosed();
  });
  Client c = ConnectTo(server);
  LoginRequest req;
  req.name = "alice";
  req.password = "secret1";
  req.device = "phone";
  req.p2p_port = 5555;
  Result<Session> r = c.Login(req);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.value.uid, 42u);
  EXPECT_EQ(r.value.name, "alice");
  EXPECT_EQ(r.value.token, "tok-1");
  ASSERT_TRUE(c.session().has_value());
  EXPECT_EQ(c.session()->token, "tok-1");
  EXPECT_TRUE(c.Logout().ok());
  EXPECT_FALSE(c.session().has_value());
}

TEST(ClientTest, LoginByUidAndWrongPasswordDescribesTheError) {
  FakeServer server([](FakePeer& peer) {
    codec::Frame req = peer.ReadFrame();
    codec::Body b = ParseBody(req);
    EXPECT_EQ(b.GetUint("uid"), 7u);
    EXPECT_FALSE(b.Has("name"));
    EXPECT_FALSE(b.Has("device"));  // omitted: the server defaults it
    peer.Respond(req, codec::ErrorBody(codec::Code::kUnauthenticated, "wrong name or password"));
    peer.WaitClientClosed();
  });
  Client c = ConnectTo(server);
  LoginRequest req;
  req.uid = 7;
  req.password = "nope12";
  Result<Session> r = c.Login(req);
  EXPECT_EQ(r.code, static_cast<int>(codec::Code::kUnauthenticated));
  EXPECT_EQ(r.Describe(), "UNAUTHENTICATED: wrong name or password");
  EXPECT_FALSE(c.session().has_value());
}

TEST(ClientTest, OkResponseMissingAFieldIsBadResponse) {
  FakeServer server([](FakePeer& peer) {
    codec::Frame req = peer.ReadFrame();
    peer.Respond(req, codec::OkBody());  // no uid
    peer.WaitClientClosed();
  });
  Client c = ConnectTo(server);
  Result<uint64_t> r = c.Register("bob", "secret1");
  EXPECT_EQ(r.code, kCodeBadResponse);
  EXPECT_NE(r.error.find("'uid'"), std::string::npos) << r.error;
}

TEST(ClientTest, RouteParsesEdgesAndPingMeasuresRtt) {
  FakeServer server([](FakePeer& peer) {
    codec::Frame route = peer.ReadFrame();
    EXPECT_EQ(route.header.service, kSys);
    EXPECT_EQ(route.header.command, codec::sys::kRoute);
    codec::MapWriter w(4);
    w.Key("code").Int(0);
    w.Key("host").Str("10.0.0.2");
    w.Key("port").Uint(7001);
    w.Key("edges");
    auto& pk = w.packer();
    pk.pack_array(2);
    for (int i = 0; i < 2; ++i) {
      pk.pack_map(3);
      pk.pack(std::string("host"));
      pk.pack(std::string(i == 0 ? "10.0.0.1" : "10.0.0.2"));
      pk.pack(std::string("port"));
      pk.pack(7000 + i);
      pk.pack(std::string("load"));
      pk.pack(i == 0 ? 50 : 3);
    }
    peer.Respond(route, w.Finish());
    codec::Frame ping = peer.ReadFrame();
    EXPECT_EQ(ping.header.command, codec::sys::kPing);
    peer.Respond(ping, testing::OkWith("ts", 1700000000123));
    peer.WaitClientClosed();
  });
  Client c = ConnectTo(server);
  Result<RouteInfo> r = c.Route();
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.value.host, "10.0.0.2");
  EXPECT_EQ(r.value.port, 7001);
  ASSERT_EQ(r.value.edges.size(), 2u);
  EXPECT_EQ(r.value.edges[0].host, "10.0.0.1");
  EXPECT_EQ(r.value.edges[0].load, 50u);
  EXPECT_EQ(r.value.edges[1].port, 7001);
  Result<PingInfo> p = c.Ping();
  ASSERT_TRUE(p.ok()) << p.Describe();
  EXPECT_EQ(p.value.server_ts, 1700000000123);
  EXPECT_GT(p.value.rtt.count(), 0);
}

TEST(ClientTest, GenericCallServesLaterServices) {
  FakeServer server([](FakePeer& peer) {
    codec::Frame req = peer.ReadFrame();
    EXPECT_EQ(req.header.service, codec::ToWire(codec::Service::kDirectory));
    peer.Respond(req, codec::ErrorBody(codec::Code::kUnauthenticated, ""));
    peer.WaitClientClosed();
  });
  Client c = ConnectTo(server);
  Response r = c.Call(codec::ToWire(codec::Service::kDirectory), codec::directory::kListFriends,
                      codec::EmptyBody());
  EXPECT_EQ(r.code, static_cast<int>(codec::Code::kUnauthenticated));
  EXPECT_EQ(r.Describe(), std::string("UNAUTHENTICATED: ") + codec::CodeDescription(2));
}

}  // namespace
}  // namespace imbus::client
