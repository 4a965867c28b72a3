// Hostile input over real sockets against the real stack: the edge answers with
// the protocol's errors, stays up and keeps serving everyone else.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "codec/body.h"
#include "codec/commands.h"
#include "codec/frame.h"
#include "test/integration/stack_util.h"

namespace imbus::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

class BadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new Stack(StackOptions{.idle_timeout_s = 2});
    stack_->StartBroker();
    stack_->StartActor("auth");
    stack_->StartEdge();
    ASSERT_TRUE(WaitWorkers(*stack_, "auth", 1)) << stack_->Logs();
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void SetUp() override {
    witness_ = Connected(*stack_);
    ASSERT_TRUE(witness_.Ping().ok());
  }
  void TearDown() override {
    // Whatever the test did, another client is still served, end to end.
    EXPECT_TRUE(witness_.Ping().ok());
    EXPECT_EQ(witness_.Register(UniqueName("witness"), "password1").code, 0);
    EXPECT_TRUE(stack_->edge(0).Running());
    if (HasFailure()) std::cerr << stack_->Logs();
  }

  // Expects SYS/ERROR as the next frame, then the connection closed.
  static void ExpectBrokenStream(client::Connection& conn) {
    auto f = conn.NextFrame(seconds(5));
    ASSERT_TRUE(f.has_value()) << "no SYS/ERROR";
    EXPECT_EQ(f->header.service, codec::ToWire(codec::Service::kSys));
    EXPECT_EQ(f->header.command, codec::sys::kError);
    EXPECT_EQ(f->header.seq, 0u);
    EXPECT_EQ(f->header.flags, 0) << "the fatal SYS/ERROR carries no RESPONSE flag";
    codec::Body body;
    std::string error;
    ASSERT_TRUE(codec::Body::Parse(f->body, &body, &error)) << error;
    EXPECT_NE(body.GetInt("code").value_or(0), 0);
    EXPECT_FALSE(body.GetString("error").value_or("").empty());
    EXPECT_FALSE(conn.NextFrame(seconds(5)).has_value());
    EXPECT_TRUE(conn.closed());
  }

  static Stack* stack_;
  client::Client witness_;
};
Stack* BadInputTest::stack_ = nullptr;

client::Connection Raw(Stack& stack) {
  client::Connection c;
  std::string error;
  EXPECT_TRUE(c.Connect("127.0.0.1", static_cast<uint16_t>(stack.edge_port()), seconds(5), &error))
      << error;
  return c;
}

TEST_F(BadInputTest, GarbageBytesGetSysErrorAndClose) {
  client::Connection c = Raw(*stack_);
  ASSERT_TRUE(c.SendRaw("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ExpectBrokenStream(c);
}

TEST_F(BadInputTest, OversizedLengthIsRefusedAtOnce) {
  client::Connection c = Raw(*stack_);
  // Only the 4 length bytes: the edge must not wait for the 4 GiB it announces.
  ASSERT_TRUE(c.SendRaw(std::string("\x7f\xff\xff\xff", 4)));
  ExpectBrokenStream(c);
}

TEST_F(BadInputTest, ClientSetFlagsAndWrongVersionBreakTheStream) {
  {
    client::Connection c = Raw(*stack_);
    ASSERT_TRUE(c.SendFrame(codec::kFlagResponse, 1, codec::sys::kPing, 1, codec::EmptyBody()));
    ExpectBrokenStream(c);
  }
  {
    client::Connection c = Raw(*stack_);
    std::string f = codec::EncodeFrame(0, 1, codec::sys::kPing, 1, codec::EmptyBody());
    f[5] = 2;  // version 2
    ASSERT_TRUE(c.SendRaw(f));
    ExpectBrokenStream(c);
  }
}

TEST_F(BadInputTest, BadBodiesGetBadRequestAndTheConnectionStays) {
  client::Connection c = Raw(*stack_);
  const uint16_t auth = codec::ToWire(codec::Service::kAuth);
  // Not a map.
  auto r1 = c.Call(auth, codec::auth::kRegister, std::string("\x93\x01\x02\x03", 4), seconds(5));
  EXPECT_EQ(r1.code, static_cast<int>(codec::Code::kBadRequest)) << r1.Describe();
  // A msgpack bomb: an array header claiming 2^32 elements.
  auto r2 = c.Call(auth, codec::auth::kRegister, std::string("\x81\xa1x\xdd\xff\xff\xff\xff", 8),
                   seconds(5));
  EXPECT_EQ(r2.code, static_cast<int>(codec::Code::kBadRequest)) << r2.Describe();
  // Trailing bytes after the map.
  auto r3 = c.Call(auth, codec::auth::kRegister, std::string("\x80\x80", 2), seconds(5));
  EXPECT_EQ(r3.code, static_cast<int>(codec::Code::kBadRequest)) << r3.Describe();
  // Still open and served.
  EXPECT_EQ(c.Call(1, codec::sys::kPing, codec::EmptyBody(), seconds(5)).code, 0);
}

// A request to SYS/ERROR's own number is an unknown command like any other: an
// ordinary UNSUPPORTED response (RESPONSE flag, the request's seq), not the fatal
// frame, and the connection stays open.
TEST_F(BadInputTest, RequestToSysErrorIsAnsweredUnsupported) {
  client::Connection c = Raw(*stack_);
  ASSERT_TRUE(c.SendFrame(0, 1, codec::sys::kError, 7, codec::EmptyBody()));
  auto f = c.NextFrame(seconds(5));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->header.flags, codec::kFlagResponse);
  EXPECT_EQ(f->header.service, 1);
  EXPECT_EQ(f->header.command, codec::sys::kError);
  EXPECT_EQ(f->header.seq, 7u);
  codec::Body body;
  std::string error;
  ASSERT_TRUE(codec::Body::Parse(f->body, &body, &error)) << error;
  EXPECT_EQ(body.GetInt("code"), static_cast<int>(codec::Code::kUnsupported));
  EXPECT_FALSE(c.closed()) << c.close_reason();
  // Through Call, too: the client library does not take it for the fatal one.
  auto r = c.Call(1, codec::sys::kError, codec::EmptyBody(), seconds(5));
  EXPECT_EQ(r.code, static_cast<int>(codec::Code::kUnsupported)) << r.Describe();
  EXPECT_EQ(c.Call(1, codec::sys::kPing, codec::EmptyBody(), seconds(5)).code, 0);
  EXPECT_FALSE(c.closed()) << c.close_reason();
}

TEST_F(BadInputTest, SlowlorisHalfFrameIsClosedByTheIdleTimeout) {
  client::Connection c = Raw(*stack_);
  const std::string f = codec::EncodeFrame(0, 1, codec::sys::kPing, 1, codec::EmptyBody());
  ASSERT_TRUE(c.SendRaw(f.substr(0, 10)));
  const auto start = Clock::now();
  // No response ever comes; the edge closes the connection after idle_timeout (2 s),
  // while the witness, which keeps pinging, stays connected.
  while (!c.closed() && Clock::now() - start < seconds(10)) {
    EXPECT_FALSE(c.NextFrame(milliseconds(500)).has_value());
    ASSERT_TRUE(witness_.Ping().ok());
  }
  EXPECT_TRUE(c.closed());
  EXPECT_LT(Clock::now() - start, seconds(9));
}

TEST_F(BadInputTest, ThousandConnectionsOpenedAndDropped) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(stack_->edge_port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int round = 0; round < 10; ++round) {
    std::vector<int> fds;
    for (int i = 0; i < 100; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      ASSERT_GE(fd, 0);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
        // Half of them leave a partial frame behind.
        if (i % 2 == 0) (void)!::write(fd, "\x00\x00\x00\x20\x00", 5);
      }
      fds.push_back(fd);
    }
    for (int fd : fds) ::close(fd);
    EXPECT_TRUE(witness_.Ping().ok()) << "round " << round;
  }
}

}  // namespace
}  // namespace imbus::testing
