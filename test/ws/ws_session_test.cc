// net::WsSession: the WebSocket framing over libwslay, without sockets. A client
// session talks to a server session through strings; hostile frames are written by
// hand (unmasked, oversized, fragment floods, bad opcodes) and must end in the right
// close code, with nothing delivered.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "net/ws_session.h"

namespace imbus::net {
namespace {

using Msgs = std::vector<WsSession::Message>;

// A frame as a client would write it: FIN/opcode, masked with a fixed key unless
// `masked` is false.
std::string Frame(uint8_t opcode, std::string_view payload, bool fin = true, bool masked = true) {
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  const uint8_t mask_bit = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(mask_bit | payload.size()));
  } else if (payload.size() < 65536) {
    f.push_back(static_cast<char>(mask_bit | 126));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xff));
  } else {
    f.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((payload.size() >> (8 * i)) & 0xff));
  }
  const char key[4] = {0x12, 0x34, 0x56, 0x78};
  if (masked) f.append(key, 4);
  for (size_t i = 0; i < payload.size(); ++i) {
    f.push_back(masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i]);
  }
  return f;
}

// The close code in the first close frame of server output (unmasked), or 0.
uint16_t CloseCodeIn(const std::string& out) {
  size_t i = 0;
  while (i + 2 <= out.size()) {
    const uint8_t op = static_cast<uint8_t>(out[i]) & 0x0f;
    size_t len = static_cast<uint8_t>(out[i + 1]) & 0x7f;
    size_t hdr = 2;
    if (len == 126) {
      len = (static_cast<uint8_t>(out[i + 2]) << 8) | static_cast<uint8_t>(out[i + 3]);
      hdr = 4;
    } else if (len == 127) {
      return 0;  // not expected from these tests
    }
    if (op == 0x8) {
      if (len < 2) return 1005;
      return static_cast<uint16_t>((static_cast<uint8_t>(out[i + hdr]) << 8) |
                                   static_cast<uint8_t>(out[i + hdr + 1]));
    }
    i += hdr + len;
  }
  return 0;
}

WsSession Server(size_t max_message = 1024, size_t max_fragments = 8) {
  return WsSession(WsSession::Role::kServer, {max_message, max_fragments});
}

TEST(WsSessionTest, ClientAndServerExchangeBinaryMessages) {
  WsSession client(WsSession::Role::kClient, {});
  WsSession server = Server();
  ASSERT_TRUE(client.SendMessage(std::string("\x00\x01hello", 7)));
  std::string wire;
  client.Output(&wire);
  ASSERT_FALSE(wire.empty());
  EXPECT_NE(static_cast<uint8_t>(wire[1]) & 0x80, 0) << "client frames are masked";
  Msgs got;
  ASSERT_TRUE(server.Feed(wire.data(), wire.size(), &got));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, WsSession::MessageType::kBinary);
  EXPECT_EQ(got[0].data, std::string("\x00\x01hello", 7));

  ASSERT_TRUE(server.SendMessage("answer"));
  std::string back;
  server.Output(&back);
  EXPECT_EQ(static_cast<uint8_t>(back[1]) & 0x80, 0) << "server frames are not masked";
  Msgs reply;
  ASSERT_TRUE(client.Feed(back.data(), back.size(), &reply));
  ASSERT_EQ(reply.size(), 1u);
  EXPECT_EQ(reply[0].data, "answer");
}

TEST(WsSessionTest, BytesArriveOneAtATime) {
  WsSession server = Server();
  const std::string wire = Frame(0x2, "abc") + Frame(0x2, "defg");
  Msgs got;
  for (char ch : wire) ASSERT_TRUE(server.Feed(&ch, 1, &got));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].data, "abc");
  EXPECT_EQ(got[1].data, "defg");
}

TEST(WsSessionTest, IdleSessionKeepsNoContext) {
  WsSession server = Server();
  Msgs got;
  EXPECT_FALSE(server.holds_context());
  // Half a frame waits outside wslay; the rest completes it.
  const std::string wire = Frame(0x2, "abcdef");
  ASSERT_TRUE(server.Feed(wire.data(), 3, &got));
  EXPECT_FALSE(server.holds_context());
  ASSERT_TRUE(server.Feed(wire.data() + 3, wire.size() - 3, &got));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, "abcdef");
  EXPECT_FALSE(server.holds_context()) << "released between messages";
  // Inside a fragmented message the context stays.
  const std::string first = Frame(0x2, "ab", false);
  ASSERT_TRUE(server.Feed(first.data(), first.size(), &got));
  EXPECT_TRUE(server.holds_context());
  const std::string last = Frame(0x0, "cd");
  ASSERT_TRUE(server.Feed(last.data(), last.size(), &got));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].data, "abcd");
  EXPECT_FALSE(server.holds_context());
  // Sending leaves none either; a close keeps it (its state matters).
  ASSERT_TRUE(server.SendMessage("out"));
  EXPECT_FALSE(server.holds_context());
  ASSERT_TRUE(server.Close(kWsNormal, "bye"));
  EXPECT_TRUE(server.holds_context());
}

TEST(WsSessionTest, UnmaskedClientFrameIsAProtocolError) {
  WsSession server = Server();
  const std::string wire = Frame(0x2, "abc", true, /*masked=*/false);
  Msgs got;
  EXPECT_FALSE(server.Feed(wire.data(), wire.size(), &got));
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(server.close_code_sent(), kWsProtocolError);
  std::string out;
  server.Output(&out);
  EXPECT_EQ(CloseCodeIn(out), kWsProtocolError);
}

TEST(WsSessionTest, FragmentsAreReassembledWithControlFramesBetween) {
  WsSession server = Server();
  const std::string wire =
      Frame(0x2, "he", false) + Frame(0x9, "p1") + Frame(0x0, "ll", false) + Frame(0x0, "o", true);
  Msgs got;
  ASSERT_TRUE(server.Feed(wire.data(), wire.size(), &got));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, "hello");
  EXPECT_EQ(server.TakePings(), 1u);
  std::string out;
  server.Output(&out);
  // The pong echoes the ping's payload.
  ASSERT_GE(out.size(), 4u);
  EXPECT_EQ(static_cast<uint8_t>(out[0]), 0x8a);
  EXPECT_EQ(out.substr(2, 2), "p1");
}

TEST(WsSessionTest, MessageOverTheLimitIsClosedWith1009) {
  WsSession server = Server(/*max_message=*/100);
  const std::string wire = Frame(0x2, std::string(101, 'x'));
  Msgs got;
  EXPECT_FALSE(server.Feed(wire.data(), wire.size(), &got));
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(server.close_code_sent(), kWsMessageTooBig);
}

TEST(WsSessionTest, FragmentsOverTheLimitTogetherAreClosedWith1009) {
  WsSession server = Server(/*max_message=*/100, /*max_fragments=*/1000);
  std::string wire = Frame(0x2, std::string(60, 'x'), false) + Frame(0x0, std::string(60, 'y'));
  Msgs got;
  EXPECT_FALSE(server.Feed(wire.data(), wire.size(), &got));
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(server.close_code_sent(), kWsMessageTooBig);
}

TEST(WsSessionTest, FragmentFloodIsClosed) {
  WsSession server = Server(/*max_message=*/1024, /*max_fragments=*/8);
  std::string wire = Frame(0x2, "", false);
  for (int i = 0; i < 20; ++i) wire += Frame(0x0, "", false);
  Msgs got;
  EXPECT_FALSE(server.Feed(wire.data(), wire.size(), &got));
  EXPECT_EQ(server.close_code_sent(), kWsMessageTooBig);
  EXPECT_NE(server.error().find("fragments"), std::string::npos) << server.error();
}

TEST(WsSessionTest, HugeAnnouncedLengthIsRefusedAtOnce) {
  WsSession server = Server(/*max_message=*/1024);
  // 64-bit length 2^40, masked, one byte of it sent: refused without waiting for more.
  std::string wire = "\x82\xff";
  for (int i = 7; i >= 0; --i) wire.push_back(static_cast<char>((uint64_t{1} << 40) >> (8 * i)));
  wire += "\x01\x02\x03\x04x";
  Msgs got;
  EXPECT_FALSE(server.Feed(wire.data(), wire.size(), &got));
  EXPECT_EQ(server.close_code_sent(), kWsMessageTooBig);
}

TEST(WsSessionTest, ReservedOpcodeAndBitsAreProtocolErrors) {
  for (const std::string& wire : {Frame(0x3, "x"), Frame(0x2 | 0x40, "x")}) {
    WsSession server = Server();
    Msgs got;
    EXPECT_FALSE(server.Feed(wire.data(), wire.size(), &got));
    EXPECT_EQ(server.close_code_sent(), kWsProtocolError);
  }
}

TEST(WsSessionTest, ContinuationWithoutStartIsAProtocolError) {
  WsSession server = Server();
  const std::string wire = Frame(0x0, "x");
  Msgs got;
  EXPECT_FALSE(server.Feed(wire.data(), wire.size(), &got));
  EXPECT_EQ(server.close_code_sent(), kWsProtocolError);
}

TEST(WsSessionTest, OversizedOrFragmentedPingIsAProtocolError) {
  for (const std::string& wire : {Frame(0x9, std::string(126, 'p')), Frame(0x9, "p", false)}) {
    WsSession server = Server();
    Msgs got;
    EXPECT_FALSE(server.Feed(wire.data(), wire.size(), &got));
    std::string out;
    server.Output(&out);
    EXPECT_EQ(CloseCodeIn(out), kWsProtocolError);
    EXPECT_EQ(server.close_code_sent(), kWsProtocolError);
  }
}

TEST(WsSessionTest, CloseIsEchoedAndEndsTheSession) {
  WsSession server = Server();
  std::string payload =
      "\x03\xe8"
      "bye";  // 1000
  const std::string wire = Frame(0x8, payload) + Frame(0x2, "late");
  Msgs got;
  EXPECT_TRUE(server.Feed(wire.data(), wire.size(), &got));
  EXPECT_TRUE(got.empty()) << "nothing after a close is delivered";
  EXPECT_TRUE(server.close_received());
  EXPECT_EQ(server.close_code_received(), kWsNormal);
  EXPECT_TRUE(server.close_sent());
  std::string out;
  server.Output(&out);
  EXPECT_EQ(CloseCodeIn(out), kWsNormal);
  EXPECT_FALSE(server.SendMessage("more")) << "no message after the close";
}

TEST(WsSessionTest, ServerCloseCarriesCodeAndReason) {
  WsSession server = Server();
  ASSERT_TRUE(server.SendMessage("last"));
  ASSERT_TRUE(server.Close(kWsGoingAway, "idle"));
  EXPECT_FALSE(server.Close(kWsNormal, "again"));
  std::string out;
  server.Output(&out);
  EXPECT_EQ(CloseCodeIn(out), kWsGoingAway);
  EXPECT_NE(out.find("idle"), std::string::npos);
  EXPECT_TRUE(server.closing());
}

TEST(WsSessionTest, TextMessagesAreDeliveredAsText) {
  WsSession server = Server();
  const std::string wire = Frame(0x1, "hi");
  Msgs got;
  ASSERT_TRUE(server.Feed(wire.data(), wire.size(), &got));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, WsSession::MessageType::kText);
}

TEST(WsSessionTest, AcceptKeyMatchesTheRfcExample) {
  // RFC 6455 section 1.3.
  EXPECT_EQ(WsAcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_TRUE(WsValidKey("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_FALSE(WsValidKey("dGhlIHNhbXBsZSBub25jZQ="));
  EXPECT_FALSE(WsValidKey("dGhlIHNhbXBsZSBub25jZQ!="));
  EXPECT_FALSE(WsValidKey("dGhlIHNhbXBsZSBub25jZR=="));  // trailing bits set
  EXPECT_FALSE(WsValidKey(""));
}

}  // namespace
}  // namespace imbus::net
