// The WebSocket listener of a running edge (in-process, fake broker), over raw
// sockets: a WebSocket connection is a connection like any other (requests forwarded,
// replies, pushes, kicks, one frame per binary message, fragments reassembled), and
// hostile input gets the right HTTP error or close code while the edge stays up and a
// witness (one plain client, one WebSocket client) keeps being served.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "net/ws_session.h"

#include "test/edge/edge_test_util.h"

namespace imbus::edge::testing {
namespace {

using codec::BusType;
constexpr uint16_t kSys = 1, kAuth = 2;
constexpr char kKey[] = "dGhlIHNhbXBsZSBub25jZQ==";

// A client frame (masked unless told), as browsers send them.
std::string WsFrame(uint8_t opcode, std::string_view payload, bool fin = true, bool masked = true) {
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  const uint8_t m = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(m | payload.size()));
  } else if (payload.size() < 65536) {
    f.push_back(static_cast<char>(m | 126));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xff));
  } else {
    f.push_back(static_cast<char>(m | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((payload.size() >> (8 * i)) & 0xff));
  }
  const char key[4] = {0x0a, 0x1b, 0x2c, 0x3d};
  if (masked) f.append(key, 4);
  for (size_t i = 0; i < payload.size(); ++i) {
    f.push_back(masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i]);
  }
  return f;
}

std::string Upgrade(const std::string& extra = "") {
  return std::string("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n") +
         "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + kKey + "\r\n" +
         extra + "\r\n";
}

// What the edge sent on a WebSocket: a message, a close (with its code), or the end.
struct WsEvent {
  enum Type { kMessage, kClose, kPong, kEnd } type = kEnd;
  std::string data;
  uint16_t code = 0;
};

class WsClient {
 public:
  explicit WsClient(uint16_t port, int rcvbuf = 0) : tcp_(port, rcvbuf) {}
  TestClient& tcp() { return tcp_; }

  // Sends `request` and reads the response head (and whatever follows it).
  std::string Http(const std::string& request, Ms timeout = 5000ms) {
    tcp_.SendRaw(request);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (buf_.find("\r\n\r\n") == std::string::npos) {
      if (!Fill(deadline)) break;
    }
    const size_t end = buf_.find("\r\n\r\n");
    std::string head = end == std::string::npos ? buf_ : buf_.substr(0, end + 4);
    buf_.erase(0, head.size());
    // The body goes too (Content-Length; none on 101 and 304).
    const size_t cl = head.find("Content-Length: ");
    if (cl != std::string::npos) {
      const size_t n = std::stoul(head.substr(cl + 16));
      while (buf_.size() < n && Fill(deadline)) {
      }
      body_ = buf_.substr(0, n);
      buf_.erase(0, std::min(n, buf_.size()));
    }
    return head;
  }
  bool Open() { return Http(Upgrade()).rfind("HTTP/1.1 101 ", 0) == 0; }

  bool SendFrame(uint16_t service, uint16_t command, uint32_t seq,
                 std::string_view body = codec::EmptyBody()) {
    return tcp_.SendRaw(WsFrame(0x2, codec::EncodeFrame(0, service, command, seq, body)));
  }
  // The next event; pongs are returned too.
  WsEvent Next(Ms timeout = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (buf_.size() >= 2) {
        const uint8_t op = static_cast<uint8_t>(buf_[0]) & 0x0f;
        uint64_t len = static_cast<uint8_t>(buf_[1]) & 0x7f;
        size_t hdr = 2;
        if (len == 126 && buf_.size() >= 4) {
          len = (uint64_t{static_cast<uint8_t>(buf_[2])} << 8) | static_cast<uint8_t>(buf_[3]);
          hdr = 4;
        } else if (len == 127 && buf_.size() >= 10) {
          len = 0;
          for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<uint8_t>(buf_[2 + i]);
          hdr = 10;
        } else if (len >= 126) {
          hdr = 0;
        }
        if (hdr != 0 && buf_.size() >= hdr + len) {
          WsEvent e;
          e.data = buf_.substr(hdr, len);
          buf_.erase(0, hdr + len);
          if (op == 0x8) {
            e.type = WsEvent::kClose;
            e.code = e.data.size() >= 2
                         ? static_cast<uint16_t>((static_cast<uint8_t>(e.data[0]) << 8) |
                                                 static_cast<uint8_t>(e.data[1]))
                         : 1005;
          } else if (op == 0xA) {
            e.type = WsEvent::kPong;
          } else {
            e.type = WsEvent::kMessage;
          }
          return e;
        }
      }
      if (!Fill(deadline)) return WsEvent{};
    }
  }
  // The next message as a frame (pongs skipped); nullopt on a close or the end.
  std::optional<codec::Frame> ReadFrame(Ms timeout = 5000ms) {
    for (;;) {
      WsEvent e = Next(timeout);
      if (e.type == WsEvent::kPong) continue;
      if (e.type != WsEvent::kMessage) {
        last_close_ = e.type == WsEvent::kClose ? e.code : 0;
        return std::nullopt;
      }
      codec::FrameDecoder d(codec::FrameDecoder::Sender::kServer, 1u << 24);
      d.Feed(e.data.data(), e.data.size());
      codec::Frame f;
      EXPECT_EQ(d.Next(&f), codec::FrameDecoder::Status::kFrame);
      EXPECT_EQ(d.buffered(), 0u) << "one frame per message";
      return f;
    }
  }
  // The close code the edge sent (skipping messages), 0 if it ended without one.
  uint16_t WaitClose(Ms timeout = 5000ms) {
    for (;;) {
      WsEvent e = Next(timeout);
      if (e.type == WsEvent::kClose) return e.code;
      if (e.type == WsEvent::kEnd) return 0;
    }
  }
  // True when the TCP connection ends within `timeout`.
  bool WaitEnd(Ms timeout = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (Fill(deadline)) buf_.clear();
    return eof_;
  }
  uint16_t last_close() const { return last_close_; }
  const std::string& body() const { return body_; }  // of the last Http response

 private:
  bool Fill(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<Ms>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || eof_) return false;
    pollfd p{tcp_.fd(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char b[65536];
    const ssize_t n = ::recv(tcp_.fd(), b, sizeof(b), 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buf_.append(b, static_cast<size_t>(n));
    return true;
  }

  TestClient tcp_;
  std::string buf_;
  std::string body_;
  bool eof_ = false;
  uint16_t last_close_ = 0;
};

class WsEdgeTest : public ::testing::Test {
 protected:
  void Start(EdgeOptions o) {
    o.ws_listen_host = "127.0.0.1";
    o.ws_listen_port = 0;
    edge_ = std::make_unique<EdgeServer>(std::move(o));
    edge_->Start();
    identity_ = broker_.WaitReady();
  }
  void Start() { Start(TestOptions(broker_.endpoint())); }
  uint16_t ws_port() const { return edge_->ws_port(); }

  // Both witnesses still answered at once.
  void ExpectWitnessesServed() {
    TestClient plain(edge_->port());
    ASSERT_TRUE(plain.SendFrame(kSys, codec::sys::kPing, 7));
    auto f = plain.ReadFrame();
    ASSERT_TRUE(f.has_value()) << "plain witness not served";
    EXPECT_EQ(f->header.seq, 7u);
    ASSERT_TRUE(witness_->SendFrame(kSys, codec::sys::kPing, ++witness_seq_));
    auto w = witness_->ReadFrame();
    ASSERT_TRUE(w.has_value()) << "WebSocket witness not served";
    EXPECT_EQ(w->header.seq, witness_seq_);
  }
  void OpenWitness() {
    witness_ = std::make_unique<WsClient>(ws_port());
    ASSERT_TRUE(witness_->Open());
  }

  std::pair<codec::RequestMeta, std::string> Forwarded(WsClient& c, uint16_t service,
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
    codec::ReplyMeta r;
    r.rid = 1;
    r.conn = req.conn;
    r.seq = req.seq;
    r.service = req.service;
    r.command = req.command;
    r.action = static_cast<uint8_t>(action);
    r.session = std::move(session);
    broker_.Send(identity_, BusType::kReply, codec::PackMeta(r), body);
  }
  uint64_t LogIn(WsClient& c) {
    codec::MapWriter w(2);
    w.Key("name").Str("alice");
    w.Key("password").Str("secret1");
    auto [req, body] = Forwarded(c, kAuth, codec::auth::kLogin, 100, w.Finish());
    codec::SessionInfo s;
    s.uid = 42;
    s.device = "browser";
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
  std::unique_ptr<EdgeServer> edge_;
  std::string identity_;
  std::unique_ptr<WsClient> witness_;
  uint32_t witness_seq_ = 0;
};

TEST_F(WsEdgeTest, FramesRequestsRepliesPushesAndKickOverWebSocket) {
  Start();
  WsClient c(ws_port());
  ASSERT_TRUE(c.Open());
  // Answered by the edge itself.
  ASSERT_TRUE(c.SendFrame(kSys, codec::sys::kHello, 1));
  auto hello = c.ReadFrame();
  ASSERT_TRUE(hello.has_value());
  EXPECT_EQ(hello->header.flags, codec::kFlagResponse);
  EXPECT_EQ(ParseBody(hello->body).GetUint("max_frame").value_or(0), 65536u);
  // A login through the broker: the session is the WebSocket connection's.
  const uint64_t conn = LogIn(c);
  // A push to it arrives as one message.
  codec::EdgePushMeta push;
  push.conns = {conn};
  push.service = 5;
  push.command = 100;
  codec::MapWriter m(1);
  m.Key("text").Str("pushed");
  broker_.Send(identity_, BusType::kPush, codec::PackMeta(push), m.Finish());
  auto p = c.ReadFrame();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->header.flags, codec::kFlagPush);
  EXPECT_EQ(ParseBody(p->body).GetString("text").value_or(""), "pushed");
  // A fragmented message (with a ping between the fragments) is one request.
  const std::string ping = codec::EncodeFrame(0, kSys, codec::sys::kPing, 9, codec::EmptyBody());
  ASSERT_TRUE(c.tcp().SendRaw(WsFrame(0x2, ping.substr(0, 5), false) + WsFrame(0x9, "hb") +
                              WsFrame(0x0, ping.substr(5, 6), false) +
                              WsFrame(0x0, ping.substr(11))));
  WsEvent pong = c.Next();
  EXPECT_EQ(pong.type, WsEvent::kPong);
  EXPECT_EQ(pong.data, "hb");
  auto r = c.ReadFrame();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->header.seq, 9u);
  // A kick: AUTH/KICKED, then a normal close.
  broker_.Send(identity_, BusType::kKick, codec::PackMeta(codec::KickMeta{conn, "elsewhere"}));
  auto k = c.ReadFrame();
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->header.service, kAuth);
  EXPECT_EQ(k->header.command, codec::auth::kKicked);
  EXPECT_EQ(c.WaitClose(), net::kWsNormal);
  EXPECT_EQ(edge_->Stats().kicked, 1u);
}

TEST_F(WsEdgeTest, BadUpgradesGetClearHttpErrors) {
  Start();
  OpenWitness();
  struct Case {
    std::string request;
    std::string status;
  };
  const std::vector<Case> cases = {
      {"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\n\r\n",
       "400"},  // no key
      {"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: not-base64-16\r\n\r\n",
       "400"},  // wrong key
      {"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 7\r\nSec-WebSocket-Key: " +
           std::string(kKey) + "\r\n\r\n",
       "426"},
      {"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", "426"},
      {"GARBAGE\r\n\r\n", "400"},
      {"GET /ws HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n", "400"},
      {Upgrade("Origin: http://evil.example\r\n"), "403"},
      {"GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(9000, 'a') + "\r\n\r\n", "431"},
      // A WebSocket close frame before any handshake.
      {WsFrame(0x8, "\x03\xe8"), "400"},
      // An imbus frame on the WebSocket port.
      {codec::EncodeFrame(0, kSys, codec::sys::kPing, 1, codec::EmptyBody()), "400"},
  };
  for (const Case& k : cases) {
    WsClient c(ws_port());
    const std::string head = c.Http(k.request);
    EXPECT_EQ(head.rfind("HTTP/1.1 " + k.status + " ", 0), 0u) << k.request << "\n" << head;
    EXPECT_TRUE(c.WaitEnd()) << "closed after the error: " << k.request;
  }
  ExpectWitnessesServed();
}

TEST_F(WsEdgeTest, ServesTheWebAppOnTheSamePort) {
  char dir[] = "/tmp/imbus-ws-web-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::ofstream(std::string(dir) + "/index.html") << "<!doctype html>hello";
  EdgeOptions o = TestOptions(broker_.endpoint());
  o.web_root = dir;
  Start(o);
  WsClient c(ws_port());
  std::string head = c.Http("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Type: text/html; charset=utf-8"), std::string::npos);
  EXPECT_EQ(c.body(), "<!doctype html>hello");
  // Keep-alive: a second request on the same connection, then the upgrade.
  head = c.Http("GET /missing.js HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 404 ", 0), 0u) << head;
  ASSERT_TRUE(c.Open());
  ASSERT_TRUE(c.SendFrame(kSys, codec::sys::kPing, 3));
  EXPECT_TRUE(c.ReadFrame().has_value());
  std::filesystem::remove_all(dir);
}

TEST_F(WsEdgeTest, HostileFramesGetTheRightCloseCodes) {
  EdgeOptions o = TestOptions(broker_.endpoint());
  o.max_frame = 1024;
  o.max_output_bytes = 65536;
  Start(o);
  OpenWitness();
  const std::string ping = codec::EncodeFrame(0, kSys, codec::sys::kPing, 1, codec::EmptyBody());
  struct Case {
    const char* what;
    std::string bytes;
    uint16_t code;
  };
  std::string fragments = WsFrame(0x2, "", false);
  for (int i = 0; i < 100; ++i) fragments += WsFrame(0x0, "", false);
  const std::vector<Case> cases = {
      {"unmasked frame", WsFrame(0x2, ping, true, /*masked=*/false), net::kWsProtocolError},
      {"message over max_frame", WsFrame(0x2, std::string(1025, 'x')), net::kWsMessageTooBig},
      {"fragments over max_frame together",
       WsFrame(0x2, std::string(600, 'x'), false) + WsFrame(0x0, std::string(600, 'y')),
       net::kWsMessageTooBig},
      {"fragment flood", fragments, net::kWsMessageTooBig},
      {"text message", WsFrame(0x1, "hello"), net::kWsUnsupportedData},
      {"two frames in one message", WsFrame(0x2, ping + ping), net::kWsPolicyViolation},
      {"part of a frame", WsFrame(0x2, ping.substr(0, 10)), net::kWsPolicyViolation},
      {"a broken frame", WsFrame(0x2, std::string("\x00\x00\x00\x05", 4) + ping.substr(4)),
       net::kWsPolicyViolation},
      {"reserved opcode", WsFrame(0x3, "x"), net::kWsProtocolError},
      {"oversized ping", WsFrame(0x9, std::string(200, 'p')), net::kWsProtocolError},
      {"client close", WsFrame(0x8, "\x03\xe8"), net::kWsNormal},
  };
  for (const Case& k : cases) {
    WsClient c(ws_port());
    ASSERT_TRUE(c.Open());
    ASSERT_TRUE(c.tcp().SendRaw(k.bytes));
    EXPECT_EQ(c.WaitClose(), k.code) << k.what;
    EXPECT_TRUE(c.WaitEnd()) << k.what;
  }
  ExpectWitnessesServed();
}

TEST_F(WsEdgeTest, PingFloodIsClosedByTheRequestRate) {
  EdgeOptions o = TestOptions(broker_.endpoint());
  o.conn_requests = net::TokenRate{10, 20};
  Start(o);
  OpenWitness();
  WsClient c(ws_port());
  ASSERT_TRUE(c.Open());
  std::string flood;
  for (int i = 0; i < 200; ++i) flood += WsFrame(0x9, "x");
  ASSERT_TRUE(c.tcp().SendRaw(flood));
  EXPECT_EQ(c.WaitClose(), net::kWsPolicyViolation);
  EXPECT_TRUE(c.WaitEnd());
  EXPECT_GE(edge_->Stats().rate_limited, 1u);
  ExpectWitnessesServed();
}

TEST_F(WsEdgeTest, SlowReaderIsClosed) {
  EdgeOptions o = TestOptions(broker_.endpoint());
  o.max_output_bytes = 65536;
  Start(o);
  OpenWitness();
  WsClient c(ws_port(), /*rcvbuf=*/4096);
  ASSERT_TRUE(c.Open());
  const uint64_t conn = LogIn(c);
  codec::EdgePushMeta push;
  push.conns = {conn};
  push.service = 5;
  push.command = 100;
  codec::MapWriter m(1);
  m.Key("text").Str(std::string(30000, 'x'));
  // Never read: the pushes pile up past the output bound.
  broker_.SendRepeated(identity_, BusType::kPush, codec::PackMeta(push), m.Finish(), 400);
  ASSERT_TRUE(broker_.WaitAllSent(20000ms));
  for (int i = 0; i < 100 && edge_->Stats().closed_slow_reader == 0; ++i) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(edge_->Stats().closed_slow_reader, 1u);
  // Its session is gone: the broker is told.
  EXPECT_TRUE(broker_.Expect(BusType::kUnbind).has_value());
  ExpectWitnessesServed();
}

TEST_F(WsEdgeTest, IdleWebSocketIsClosedGoingAway) {
  EdgeOptions o = TestOptions(broker_.endpoint());
  o.idle_timeout_s = 1;
  Start(o);
  WsClient c(ws_port());
  ASSERT_TRUE(c.Open());
  EXPECT_EQ(c.WaitClose(5000ms), net::kWsGoingAway);
  EXPECT_GE(edge_->Stats().closed_idle, 1u);
}

TEST_F(WsEdgeTest, OriginAllowList) {
  EdgeOptions o = TestOptions(broker_.endpoint());
  o.ws_origins = {"https://chat.example.com"};
  Start(o);
  WsClient ok(ws_port());
  EXPECT_EQ(ok.Http(Upgrade("Origin: https://chat.example.com\r\n")).rfind("HTTP/1.1 101", 0), 0u);
  WsClient bad(ws_port());
  EXPECT_EQ(bad.Http(Upgrade("Origin: http://127.0.0.1\r\n")).rfind("HTTP/1.1 403", 0), 0u);
}

TEST_F(WsEdgeTest, PerAddressCapAnswers429) {
  EdgeOptions o = TestOptions(broker_.endpoint());
  o.max_conns_per_ip = 2;
  Start(o);
  WsClient a(ws_port());
  WsClient b(ws_port());
  ASSERT_TRUE(a.Open());
  ASSERT_TRUE(b.Open());
  WsClient c(ws_port());
  std::string head = c.Http("");
  EXPECT_EQ(head.rfind("HTTP/1.1 429 ", 0), 0u) << head;
  EXPECT_TRUE(c.WaitEnd());
}

}  // namespace
}  // namespace imbus::edge::testing
