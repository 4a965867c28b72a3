// Connection against a scripted fake server: seq matching, pushes, split and
// coalesced frames, SYS/ERROR, timeouts, connect failures, local port binding.
#include "client/connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <thread>

#include <gtest/gtest.h>

#include "codec/codes.h"
#include "codec/commands.h"
#include "test/client/fake_server.h"

namespace imbus::client {
namespace {

using std::chrono::milliseconds;
using testing::FakePeer;
using testing::FakeServer;
using testing::OkWith;

constexpr uint16_t kSys = codec::ToWire(codec::Service::kSys);
constexpr uint16_t kMsg = codec::ToWire(codec::Service::kMsg);

std::string NBody(uint64_t n) {
  codec::MapWriter w(1);
  w.Key("n").Uint(n);
  return w.Finish();
}

uint64_t NOf(const codec::Frame& f) {
  codec::Body b;
  std::string err;
  EXPECT_TRUE(codec::Body::Parse(f.body, &b, &err)) << err;
  return b.GetUint("n").value_or(0);
}

Connection ConnectTo(const FakeServer& server) {
  Connection c;
  std::string error;
  EXPECT_TRUE(c.Connect("127.0.0.1", server.port(), milliseconds(2000), &error)) << error;
  return c;
}

TEST(ConnectionTest, MatchesOutOfOrderResponsesAndQueuesInterleavedPushes) {
  FakeServer server([](FakePeer& peer) {
    codec::Frame r1 = peer.ReadFrame();
    codec::Frame r2 = peer.ReadFrame();
    codec::Frame r3 = peer.ReadFrame();
    // Each response echoes its request's n as "n" + 100; pushes come in between.
    peer.Respond(r3, OkWith("n", NOf(r3) + 100));
    peer.Push(kMsg, codec::msg::kMessage, NBody(1));
    peer.Respond(r1, OkWith("n", NOf(r1) + 100));
    peer.Push(kMsg, codec::msg::kMessage, NBody(2));
    peer.Respond(r2, OkWith("n", NOf(r2) + 100));
    peer.WaitClientClosed();
  });
  Connection c = ConnectTo(server);
  const uint32_t s1 = c.Send(kSys, codec::sys::kPing, NBody(1));
  const uint32_t s2 = c.Send(kSys, codec::sys::kPing, NBody(2));
  ASSERT_NE(s1, 0u);
  ASSERT_NE(s1, s2);
  Response r3 = c.Call(kSys, codec::sys::kPing, NBody(3), milliseconds(5000));
  ASSERT_TRUE(r3.ok()) << r3.Describe();
  EXPECT_EQ(r3.body.GetUint("n"), 103u);
  // Claimed in another order than they arrived (r1 is queued before r2).
  Response r2 = c.WaitResponse(s2, milliseconds(5000));
  ASSERT_TRUE(r2.ok()) << r2.Describe();
  EXPECT_EQ(r2.body.GetUint("n"), 102u);
  EXPECT_EQ(r2.header.seq, s2);
  Response r1 = c.WaitResponse(s1, milliseconds(5000));
  ASSERT_TRUE(r1.ok()) << r1.Describe();
  EXPECT_EQ(r1.body.GetUint("n"), 101u);

  std::optional<Push> p1 = c.WaitPush(milliseconds(5000));
  std::optional<Push> p2 = c.WaitPush(milliseconds(5000));
  ASSERT_TRUE(p1 && p2);
  EXPECT_EQ(p1->service, kMsg);
  EXPECT_EQ(p1->command, codec::msg::kMessage);
  EXPECT_EQ(p1->body.GetUint("n"), 1u);
  EXPECT_EQ(p2->body.GetUint("n"), 2u);
  EXPECT_FALSE(p1->is_error());
  EXPECT_FALSE(c.PollPushes());
  c.Close();
}

TEST(ConnectionTest, ReassemblesAResponseDeliveredByteByByte) {
  FakeServer server([](FakePeer& peer) {
    codec::Frame req = peer.ReadFrame();
    const std::string bytes = FakePeer::ResponseBytes(req, OkWith("ts", 1234567));
    for (char ch : bytes) {
      peer.Write(std::string_view(&ch, 1));
      std::this_thread::sleep_for(milliseconds(1));
    }
    peer.WaitClientClosed();
  });
  Connection c = ConnectTo(server);
  Response r = c.Call(kSys, codec::sys::kPing, codec::EmptyBody(), milliseconds(5000));
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.body.GetUint("ts"), 1234567u);
}

TEST(ConnectionTest, SplitsFramesCoalescedInOneWrite) {
  FakeServer server([](FakePeer& peer) {
    codec::Frame a = peer.ReadFrame();
    codec::Frame b = peer.ReadFrame();
    // Push, response b, response a and half of another push in one write; the rest later.
    const std::string tail = FakePeer::PushBytes(kMsg, codec::msg::kMessage, NBody(8));
    peer.Write(FakePeer::PushBytes(kMsg, codec::msg::kMessage, NBody(7)) +
               FakePeer::ResponseBytes(b, OkWith("n", 2)) +
               FakePeer::ResponseBytes(a, OkWith("n", 1)) + tail.substr(0, 10));
    std::this_thread::sleep_for(milliseconds(20));
    peer.Write(tail.substr(10));
    peer.WaitClientClosed();
  });
  Connection c = ConnectTo(server);
  const uint32_t a = c.Send(kSys, codec::sys::kPing, codec::EmptyBody());
  const uint32_t b = c.Send(kSys, codec::sys::kPing, codec::EmptyBody());
  Response ra = c.WaitResponse(a, milliseconds(5000));
  EXPECT_EQ(ra.body.GetUint("n"), 1u);
  Response rb = c.WaitResponse(b, milliseconds(5000));
  EXPECT_EQ(rb.body.GetUint("n"), 2u);
  std::optional<Push> p7 = c.WaitPush(milliseconds(5000));
  std::optional<Push> p8 = c.WaitPush(milliseconds(5000));
  ASSERT_TRUE(p7 && p8);
  EXPECT_EQ(p7->body.GetUint("n"), 7u);
  EXPECT_EQ(p8->body.GetUint("n"), 8u);
}

TEST(ConnectionTest, ReportsSysErrorThenClosed) {
  FakeServer server([](FakePeer& peer) {
    std::string got = peer.ReadSome(std::chrono::steady_clock::now() + milliseconds(5000));
    EXPECT_FALSE(got.empty());
    peer.Write(codec::EncodeFrame(
        0, kSys, codec::sys::kError, 0,
        codec::ErrorBody(codec::Code::kBadRequest, "unsupported protocol version 2")));
    peer.Close();
  });
  Connection c = ConnectTo(server);
  std::string bad = codec::EncodeFrame(0, kSys, codec::sys::kPing, 1, codec::EmptyBody());
  bad[5] = 2;  // version 2
  ASSERT_TRUE(c.SendRaw(bad));
  std::optional<Push> p = c.WaitPush(milliseconds(5000));
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->is_error());
  EXPECT_EQ(p->body.GetInt("code"), static_cast<int>(codec::Code::kBadRequest));
  EXPECT_TRUE(c.closed());
  EXPECT_NE(c.close_reason().find("BAD_REQUEST: unsupported protocol version 2"), std::string::npos)
      << c.close_reason();
  Response r = c.Call(kSys, codec::sys::kPing, codec::EmptyBody(), milliseconds(1000));
  EXPECT_EQ(r.code, kCodeDisconnected);
  EXPECT_EQ(c.Send(kSys, codec::sys::kPing, codec::EmptyBody()), 0u);
}

TEST(ConnectionTest, TimeoutReturnsCodeTimeoutAndDropsTheLateResponse) {
  FakeServer server([](FakePeer& peer) {
    codec::Frame req = peer.ReadFrame();
    codec::Frame go = peer.ReadFrame();  // the client says when to answer late
    peer.Respond(req, OkWith("n", 1));
    peer.Push(kMsg, codec::msg::kMessage, NBody(9));
    peer.WaitClientClosed();
  });
  Connection c = ConnectTo(server);
  const auto start = std::chrono::steady_clock::now();
  Response r = c.Call(kSys, codec::sys::kPing, codec::EmptyBody(), milliseconds(150));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.code, kCodeTimeout);
  EXPECT_EQ(r.Describe(), "TIMEOUT: no response within 150 ms");
  EXPECT_GE(took, milliseconds(150));
  EXPECT_LT(took, milliseconds(2000));
  EXPECT_FALSE(c.closed());
  ASSERT_NE(c.Send(kSys, codec::sys::kPing, codec::EmptyBody()), 0u);
  std::optional<Push> p = c.WaitPush(milliseconds(5000));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->body.GetUint("n"), 9u);
  EXPECT_EQ(c.queued(), 0u);  // the late response was dropped, not queued forever
}

TEST(ConnectionTest, PeerClosingDuringCallIsDisconnected) {
  FakeServer server([](FakePeer& peer) {
    peer.ReadFrame();
    peer.Close();
  });
  Connection c = ConnectTo(server);
  Response r = c.Call(kSys, codec::sys::kPing, codec::EmptyBody(), milliseconds(5000));
  EXPECT_EQ(r.code, kCodeDisconnected);
  EXPECT_EQ(r.error, "closed by peer");
  EXPECT_TRUE(c.closed());
  EXPECT_FALSE(c.WaitPush(milliseconds(100)).has_value());
}

TEST(ConnectionTest, BrokenStreamFromServerClosesWithReason) {
  FakeServer server([](FakePeer& peer) {
    peer.ReadFrame();
    peer.Write(std::string("\x00\x00\x00\x03garbage", 11));  // length 3 < 16
    peer.WaitClientClosed();
  });
  Connection c = ConnectTo(server);
  Response r = c.Call(kSys, codec::sys::kPing, codec::EmptyBody(), milliseconds(5000));
  EXPECT_EQ(r.code, kCodeDisconnected);
  EXPECT_NE(r.error.find("broken stream"), std::string::npos) << r.error;
  EXPECT_TRUE(c.closed());
}

TEST(ConnectionTest, BadResponseBodyIsReported) {
  FakeServer server([](FakePeer& peer) {
    codec::Frame a = peer.ReadFrame();
    peer.Respond(a, "\x91\x01");  // an array, not a map
    codec::Frame b = peer.ReadFrame();
    peer.Respond(b, codec::EmptyBody());  // no code
    peer.WaitClientClosed();
  });
  Connection c = ConnectTo(server);
  Response a = c.Call(kSys, codec::sys::kPing, codec::EmptyBody(), milliseconds(5000));
  EXPECT_EQ(a.code, kCodeBadResponse);
  Response b = c.Call(kSys, codec::sys::kPing, codec::EmptyBody(), milliseconds(5000));
  EXPECT_EQ(b.code, kCodeBadResponse);
  EXPECT_EQ(b.Describe(), "BAD_RESPONSE: response body has no 'code'");
  EXPECT_FALSE(c.closed());
}

TEST(ConnectionTest, NextFrameGivesEveryFrameInArrivalOrder) {
  FakeServer server([](FakePeer& peer) {
    codec::Frame req = peer.ReadFrame();
    peer.Push(kMsg, codec::msg::kMessage, NBody(1));
    peer.Respond(req, OkWith("n", 2));
    peer.WaitClientClosed();
  });
  Connection c = ConnectTo(server);
  const uint32_t seq = c.Send(kSys, codec::sys::kPing, codec::EmptyBody());
  std::optional<codec::Frame> f1 = c.NextFrame(milliseconds(5000));
  std::optional<codec::Frame> f2 = c.NextFrame(milliseconds(5000));
  ASSERT_TRUE(f1 && f2);
  EXPECT_EQ(f1->header.flags, codec::kFlagPush);
  EXPECT_EQ(f2->header.flags, codec::kFlagResponse);
  EXPECT_EQ(f2->header.seq, seq);
  EXPECT_FALSE(c.NextFrame(milliseconds(10)).has_value());
}

TEST(ConnectionTest, ConnectRefusedGivesCleanError) {
  Connection c;
  std::string error;
  EXPECT_FALSE(c.Connect("127.0.0.1", testing::UnusedPort(), milliseconds(2000), &error));
  EXPECT_EQ(error, "Connection refused");
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(c.Call(kSys, codec::sys::kPing, codec::EmptyBody(), milliseconds(10)).code,
            kCodeDisconnected);
}

TEST(ConnectionTest, UnresolvableHostGivesCleanError) {
  Connection c;
  std::string error;
  EXPECT_FALSE(c.Connect("no such host.invalid", 7000, milliseconds(2000), &error));
  EXPECT_NE(error.find("cannot resolve"), std::string::npos) << error;
}

TEST(ConnectionTest, BindsTheRequestedLocalPortBesideAListener) {
  // A P2P client listens on the very port its server connection uses.
  const uint16_t local = testing::UnusedPort();
  net::UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(listener.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  a.sin_port = htons(local);
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(listener.get(), 4), 0);

  FakeServer server([](FakePeer& peer) { peer.WaitClientClosed(); });
  Connection c;
  std::string error;
  ASSERT_TRUE(
      c.Connect("127.0.0.1", server.port(), ConnectOptions{milliseconds(2000), local}, &error))
      << error;
  EXPECT_EQ(c.local_port(), local);
  c.Close();
  EXPECT_EQ(c.close_reason(), "closed locally");
}

TEST(ConnectionTest, AdoptedSocketsTalkPeerToPeer) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  Connection a = Connection::FromFd(net::UniqueFd(fds[0]));
  Connection b = Connection::FromFd(net::UniqueFd(fds[1]));
  constexpr uint16_t kP2p = codec::ToWire(codec::Service::kP2p);
  std::thread answerer([&b] {
    std::optional<Push> req = b.WaitPush(milliseconds(5000));
    ASSERT_TRUE(req.has_value());
    EXPECT_EQ(req->command, codec::p2p::kText);
    EXPECT_EQ(req->body.GetString("text"), "hi");
    EXPECT_TRUE(b.SendFrame(codec::kFlagResponse, req->service, req->command, req->header.seq,
                            codec::OkBody()));
  });
  codec::MapWriter w(1);
  w.Key("text").Str("hi");
  Response r = a.Call(kP2p, codec::p2p::kText, w.Finish(), milliseconds(5000));
  answerer.join();
  EXPECT_TRUE(r.ok()) << r.Describe();
}

TEST(ConnectionTest, DescribeUsesServerTextElseCodeDescription) {
  EXPECT_EQ(DescribeResult(2, "wrong name or password"), "UNAUTHENTICATED: wrong name or password");
  EXPECT_EQ(DescribeResult(7, ""), std::string("UNAVAILABLE: ") + codec::CodeDescription(7));
  EXPECT_EQ(DescribeResult(kCodeDisconnected, ""), "DISCONNECTED: connection closed");
}

}  // namespace
}  // namespace imbus::client
