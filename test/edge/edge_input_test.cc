// Bad input over real sockets: broken streams, malformed bodies, slowloris, churn,
// and a reader that never reads (PROTOCOL.md "Frames"; DESIGN.md guarantees).
#include <sys/socket.h>

#include <cstdio>
#include <thread>

#include <gtest/gtest.h>

#include "test/edge/edge_test_util.h"

namespace imbus::edge::testing {
namespace {

using codec::BusType;
constexpr uint16_t kSys = codec::ToWire(codec::Service::kSys);
constexpr uint16_t kMsg = codec::ToWire(codec::Service::kMsg);

class EdgeInputTest : public ::testing::Test {
 protected:
  void Start(EdgeOptions o) {
    server_ = std::make_unique<EdgeServer>(std::move(o));
    server_->Start();
    identity_ = broker_.WaitReady();
  }

  // Expects the SYS/ERROR frame of a broken stream, then the close.
  void ExpectBrokenStream(TestClient& c, const std::string& why_contains) {
    auto f = c.ReadFrame(3000ms);
    ASSERT_TRUE(f.has_value()) << "no SYS/ERROR";
    EXPECT_EQ(f->header.flags, 0) << "the fatal SYS/ERROR is not a response";
    EXPECT_EQ(f->header.service, kSys);
    EXPECT_EQ(f->header.command, codec::sys::kError);
    EXPECT_EQ(f->header.seq, 0u);
    auto b = ParseBody(f->body);
    EXPECT_EQ(b.GetInt("code"), static_cast<int>(codec::Code::kBadRequest));
    EXPECT_NE(b.GetString("error").value_or("").find(why_contains), std::string::npos)
        << b.GetString("error").value_or("");
    EXPECT_TRUE(c.WaitClosed(3000ms)) << "connection not closed";
  }
  bool PingWorks(TestClient& c, uint32_t seq) {
    if (!c.SendFrame(kSys, codec::sys::kPing, seq)) return false;
    auto f = c.ReadFrame(3000ms);
    return f && f->header.seq == seq && CodeOf(*f) == 0;
  }

  FakeBroker broker_;
  std::unique_ptr<EdgeServer> server_;
  std::string identity_;
};

TEST_F(EdgeInputTest, GarbageBytesGetSysErrorAndClose) {
  Start(TestOptions(broker_.endpoint()));
  TestClient c(server_->port());
  ASSERT_TRUE(c.SendRaw("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ExpectBrokenStream(c, "length");
  EXPECT_EQ(server_->Stats().closed_broken, 1u);
}

TEST_F(EdgeInputTest, OversizedLengthRefusedFromItsFourBytes) {
  Start(TestOptions(broker_.endpoint()));
  TestClient c(server_->port());
  ASSERT_TRUE(c.SendRaw(std::string("\x00\x10\x00\x01", 4)));  // 1 MiB + 1 > 64 KiB
  ExpectBrokenStream(c, "max_frame");
}

TEST_F(EdgeInputTest, ClientSetFlagsAndWrongVersionAreBrokenStreams) {
  Start(TestOptions(broker_.endpoint()));
  {
    TestClient c(server_->port());
    ASSERT_TRUE(c.SendFrame(kSys, codec::sys::kPing, 1, codec::EmptyBody(), codec::kFlagResponse));
    ExpectBrokenStream(c, "flags");
  }
  {
    TestClient c(server_->port());
    std::string frame = codec::EncodeFrame(0, kSys, codec::sys::kPing, 1, codec::EmptyBody());
    frame[5] = 2;  // version 2
    ASSERT_TRUE(c.SendRaw(frame));
    ExpectBrokenStream(c, "version");
  }
}

TEST_F(EdgeInputTest, MalformedBodiesGetBadRequestAndTheConnectionStays) {
  Start(TestOptions(broker_.endpoint()));
  TestClient c(server_->port());
  const std::string bodies[] = {
      std::string("\x93\x01\x02\x03", 4),      // an array, not a map
      std::string(),                           // empty
      std::string("\x81\x01\x02", 3),          // map with an integer key
      std::string("\x80\x80", 2),              // trailing bytes
      std::string("\xdd\xff\xff\xff\xff", 5),  // array of 2^32-1 elements: a bomb
      std::string("\xde\xff\xff", 3),          // map of 65535 pairs, truncated
  };
  uint32_t seq = 1;
  for (const auto& body : bodies) {
    ASSERT_TRUE(
        c.SendFrame(codec::ToWire(codec::Service::kAuth), codec::auth::kRegister, seq, body));
    auto f = c.ReadFrame(3000ms);
    ASSERT_TRUE(f.has_value()) << "no answer for body #" << seq;
    EXPECT_EQ(f->header.seq, seq);
    EXPECT_EQ(f->header.flags, codec::kFlagResponse);
    EXPECT_EQ(CodeOf(*f), static_cast<int>(codec::Code::kBadRequest)) << "body #" << seq;
    ++seq;
  }
  EXPECT_TRUE(PingWorks(c, 100));
  EXPECT_FALSE(broker_.Expect(BusType::kRequest, 200ms).has_value());
}

TEST_F(EdgeInputTest, SlowlorisHalfFrameClosedByIdleTimeout) {
  auto o = TestOptions(broker_.endpoint());
  o.idle_timeout_s = 1;
  Start(o);
  TestClient loris(server_->port());
  TestClient pinger(server_->port());
  const std::string frame = codec::EncodeFrame(0, kSys, codec::sys::kPing, 1, codec::EmptyBody());
  ASSERT_TRUE(loris.SendRaw(std::string_view(frame).substr(0, 8)));
  // Trickling bytes of a frame that never completes does not count as activity;
  // whole frames do.
  const auto start = std::chrono::steady_clock::now();
  bool closed = false;
  for (uint32_t i = 0; i < 12 && !closed; ++i) {
    loris.SendRaw("\x00");  // may fail once closed
    EXPECT_TRUE(PingWorks(pinger, i + 1));
    closed = loris.WaitClosed(300ms);
  }
  EXPECT_TRUE(closed) << "half frame not closed";
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 3500ms);
  EXPECT_TRUE(PingWorks(pinger, 99)) << "an active client must stay";
  EXPECT_EQ(server_->Stats().closed_idle, 1u);
}

// The edge stops reading a plain socket at a read that returns less than its buffer
// (the rest brings a new event), and reads on to EOF when the event says the peer
// hung up. Requests past one read's worth, cut into single bytes, or followed at
// once by the FIN are all answered, and the FIN is noticed.
TEST_F(EdgeInputTest, PipelinedTrickledAndHalfClosedRequestsAreAllRead) {
  Start(TestOptions(broker_.endpoint()));
  const auto ping = [](uint32_t seq) {
    return codec::EncodeFrame(0, kSys, codec::sys::kPing, seq, codec::EmptyBody());
  };

  TestClient big(server_->port());
  constexpr uint32_t kPings = 6000;
  std::string burst;
  for (uint32_t seq = 1; seq <= kPings; ++seq) burst += ping(seq);
  ASSERT_GT(burst.size(), 64u * 1024) << "more than one read of the edge";
  ASSERT_TRUE(big.SendRaw(burst));
  for (uint32_t seq = 1; seq <= kPings; ++seq) {
    auto f = big.ReadFrame(3000ms);
    ASSERT_TRUE(f.has_value()) << "no answer to PING " << seq;
    ASSERT_EQ(f->header.seq, seq);
  }

  TestClient slow(server_->port());
  for (char byte : ping(7)) {
    ASSERT_TRUE(slow.SendRaw(std::string_view(&byte, 1)));
    std::this_thread::sleep_for(2ms);
  }
  auto f = slow.ReadFrame(3000ms);
  ASSERT_TRUE(f.has_value()) << "a request that came a byte at a time";
  EXPECT_EQ(f->header.seq, 7u);

  TestClient last(server_->port());
  ASSERT_TRUE(last.SendRaw(ping(1) + ping(2) + ping(3)));
  ASSERT_EQ(::shutdown(last.fd(), SHUT_WR), 0);
  for (uint32_t seq = 1; seq <= 3; ++seq) {
    auto g = last.ReadFrame(3000ms);
    ASSERT_TRUE(g.has_value()) << "no answer to PING " << seq << " before the FIN";
    EXPECT_EQ(g->header.seq, seq);
  }
  EXPECT_TRUE(last.WaitClosed(3000ms)) << "the FIN behind the requests went unnoticed";
  EXPECT_TRUE(PingWorks(big, kPings + 1));
  EXPECT_TRUE(PingWorks(slow, 8));
}

TEST_F(EdgeInputTest, ThousandConnectionsChurnWhileAnotherClientPings) {
  auto o = TestOptions(broker_.endpoint());
  o.threads = 2;
  Start(o);
  broker_.WaitReady();  // second thread
  TestClient pinger(server_->port());
  uint32_t seq = 0;
  for (int round = 0; round < 10; ++round) {
    std::vector<std::unique_ptr<TestClient>> batch;
    for (int i = 0; i < 100; ++i) {
      batch.push_back(std::make_unique<TestClient>(server_->port()));
      ASSERT_TRUE(batch.back()->connected());
    }
    ASSERT_TRUE(PingWorks(pinger, ++seq));
    batch.clear();  // dropped
    ASSERT_TRUE(PingWorks(pinger, ++seq));
  }
  // Every dropped connection is noticed and released.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (server_->Stats().connections > 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(server_->Stats().connections, 1u);
  EXPECT_EQ(server_->Stats().accepted, 1001u);
}

TEST_F(EdgeInputTest, ReaderThatNeverReadsIsDisconnectedAndMemoryStaysBounded) {
  auto o = TestOptions(broker_.endpoint());
  o.max_output_bytes = 256 * 1024;
  Start(o);
  TestClient sink(server_->port(), /*rcvbuf=*/4096);
  TestClient pinger(server_->port());
  ASSERT_TRUE(sink.SendFrame(kSys, codec::sys::kRoute, 1));
  auto m = broker_.Expect(BusType::kRequest);
  ASSERT_TRUE(m.has_value());
  codec::RequestMeta req;
  ASSERT_TRUE(codec::UnpackMeta(m->meta, &req));

  const long rss_before = RssKib();
  codec::EdgePushMeta p;
  p.conns = {req.conn};
  p.service = kMsg;
  p.command = codec::msg::kMessage;
  codec::MapWriter w(1);
  w.Key("text").Str(std::string(16000, 'x'));
  const std::string body = w.Finish();
  // 64 MiB of pushes, far more than socket buffers (4 MiB) and the output limit hold.
  broker_.SendRepeated(identity_, BusType::kPush, codec::PackMeta(p), body, 4096);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (server_->Stats().closed_slow_reader == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(server_->Stats().closed_slow_reader, 1u);
  // The rest of the flood goes to a closed connection and is dropped.
  EXPECT_TRUE(broker_.WaitAllSent(30s));
  EXPECT_TRUE(PingWorks(pinger, 2));
  const long growth_kib = RssKib() - rss_before;
  // The edge held at most max_output_bytes for it; the rest is ZeroMQ's queues. Had
  // it buffered the flood, this would be 64 MiB.
  std::printf("RSS growth during a 64 MiB push flood to a non-reader: %ld KiB\n", growth_kib);
  // What the edge itself held for the connection never passed the limit.
  EXPECT_GT(server_->Stats().peak_output, 0u);
  EXPECT_LE(server_->Stats().peak_output, o.max_output_bytes);
#if !defined(__SANITIZE_ADDRESS__)  // ASan's quarantine keeps freed memory resident
  // Whole process (edge, fake broker, ZeroMQ queues): well under the flood.
  EXPECT_LT(growth_kib, 40 * 1024) << "RSS grew by " << growth_kib << " KiB";
#endif
  EXPECT_TRUE(sink.WaitClosed(5000ms));
}

}  // namespace
}  // namespace imbus::edge::testing
