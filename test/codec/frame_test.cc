// Frames and the incremental decoder: round trips, every way a frame can be wrong,
// and a stream split at every byte boundary.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "codec/body.h"
#include "codec/frame.h"
#include "codec/frame_decoder.h"

namespace imbus::codec {
namespace {

using Status = FrameDecoder::Status;

std::string SampleBody() {
  MapWriter w(2);
  w.Key("name").Str("alice");
  w.Key("password").Str("secret-pw");
  return w.Finish();
}

std::string RawHeader(uint32_t length, uint16_t version, uint16_t flags, uint16_t service = 1,
                      uint16_t command = 1, uint32_t seq = 7) {
  Header h;
  h.length = length;
  h.version = version;
  h.flags = flags;
  h.service = service;
  h.command = command;
  h.seq = seq;
  char buf[kHeaderSize];
  EncodeHeader(h, buf);
  return std::string(buf, kHeaderSize);
}

TEST(FrameTest, HeaderRoundTripIsBigEndian) {
  const std::string f = EncodeFrame(kFlagResponse, 0x0102, 0x0304, 0x05060708u, "\x80");
  ASSERT_EQ(f.size(), 17u);
  EXPECT_EQ(f.substr(0, 4), std::string("\x00\x00\x00\x11", 4));
  EXPECT_EQ(f.substr(4, 2), std::string("\x00\x01", 2));
  EXPECT_EQ(f.substr(6, 2), std::string("\x00\x01", 2));
  EXPECT_EQ(f.substr(8, 2), std::string("\x01\x02", 2));
  EXPECT_EQ(f.substr(10, 2), std::string("\x03\x04", 2));
  EXPECT_EQ(f.substr(12, 4), std::string("\x05\x06\x07\x08", 4));
  const Header h = DecodeHeader(f.data());
  EXPECT_EQ(h.length, 17u);
  EXPECT_EQ(h.version, 1);
  EXPECT_EQ(h.flags, kFlagResponse);
  EXPECT_EQ(h.service, 0x0102);
  EXPECT_EQ(h.command, 0x0304);
  EXPECT_EQ(h.seq, 0x05060708u);
}

TEST(FrameTest, DecoderRoundTrip) {
  const std::string body = SampleBody();
  const std::string f = EncodeFrame(0, 2, 1, 42, body);
  FrameDecoder d(FrameDecoder::Sender::kClient);
  d.Feed(f.data(), f.size());
  Frame out;
  ASSERT_EQ(d.Next(&out), Status::kFrame);
  EXPECT_EQ(out.header.service, 2);
  EXPECT_EQ(out.header.command, 1);
  EXPECT_EQ(out.header.seq, 42u);
  EXPECT_EQ(out.body, body);
  EXPECT_EQ(d.Next(&out), Status::kNeedMore);
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(FrameTest, CoalescedFramesComeOutInOrder) {
  std::string stream;
  for (uint32_t i = 1; i <= 50; ++i) AppendFrame(&stream, 0, 1, 1, i, "\x80");
  FrameDecoder d(FrameDecoder::Sender::kClient);
  d.Feed(stream.data(), stream.size());
  Frame out;
  for (uint32_t i = 1; i <= 50; ++i) {
    ASSERT_EQ(d.Next(&out), Status::kFrame);
    EXPECT_EQ(out.header.seq, i);
  }
  EXPECT_EQ(d.Next(&out), Status::kNeedMore);
}

TEST(FrameTest, SplitAtEveryByteBoundaryDecodesTheSame) {
  std::string stream;
  const std::string body = SampleBody();
  AppendFrame(&stream, 0, 2, 1, 1, body);
  AppendFrame(&stream, 0, 2, 2, 2, "\x80");
  AppendFrame(&stream, 0, 1, 1, 3, body);
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    FrameDecoder d(FrameDecoder::Sender::kClient);
    std::vector<Frame> got;
    Frame out;
    d.Feed(stream.data(), cut);
    while (d.Next(&out) == Status::kFrame) got.push_back(out);
    d.Feed(stream.data() + cut, stream.size() - cut);
    while (d.Next(&out) == Status::kFrame) got.push_back(out);
    ASSERT_EQ(got.size(), 3u) << "cut at " << cut;
    EXPECT_EQ(got[0].body, body);
    EXPECT_EQ(got[1].header.command, 2);
    EXPECT_EQ(got[2].header.seq, 3u);
    EXPECT_EQ(got[2].body, body);
  }
}

TEST(FrameTest, OneByteAtATime) {
  std::string stream;
  const std::string body = SampleBody();
  for (uint32_t i = 0; i < 5; ++i) AppendFrame(&stream, 0, 5, 1, i, body);
  FrameDecoder d(FrameDecoder::Sender::kClient);
  int frames = 0;
  Frame out;
  for (char c : stream) {
    d.Feed(&c, 1);
    while (d.Next(&out) == Status::kFrame) {
      EXPECT_EQ(out.body, body);
      ++frames;
    }
  }
  EXPECT_EQ(frames, 5);
}

struct BrokenCase {
  const char* name;
  std::string bytes;
  const char* error_part;
};

class BrokenFrameTest : public ::testing::TestWithParam<BrokenCase> {};

TEST_P(BrokenFrameTest, IsBrokenWithAReason) {
  const BrokenCase& c = GetParam();
  FrameDecoder d(FrameDecoder::Sender::kClient);
  d.Feed(c.bytes.data(), c.bytes.size());
  Frame out;
  ASSERT_EQ(d.Next(&out), Status::kBroken) << c.name;
  EXPECT_NE(d.error().find(c.error_part), std::string::npos) << d.error();
  // Broken is final, even if good bytes follow.
  const std::string good = EncodeFrame(0, 1, 1, 1, "\x80");
  d.Feed(good.data(), good.size());
  EXPECT_EQ(d.Next(&out), Status::kBroken);
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, BrokenFrameTest,
    ::testing::Values(
        BrokenCase{"short length", RawHeader(15, 1, 0), "below"},
        BrokenCase{"zero length", std::string(4, '\0'), "below"},
        BrokenCase{"huge length (only 4 bytes sent)", std::string("\xff\xff\xff\xff", 4),
                   "exceeds"},
        BrokenCase{"length one over max", RawHeader(kDefaultMaxFrame + 1, 1, 0), "exceeds"},
        BrokenCase{"wrong version", RawHeader(17, 2, 0) + "\x80", "version"},
        BrokenCase{"version 0", RawHeader(17, 0, 0) + "\x80", "version"},
        BrokenCase{"client sets RESPONSE", RawHeader(17, 1, kFlagResponse) + "\x80", "flags"},
        BrokenCase{"client sets PUSH", RawHeader(17, 1, kFlagPush) + "\x80", "flags"},
        BrokenCase{"client sets unknown bit", RawHeader(17, 1, 0x8000) + "\x80", "flags"},
        BrokenCase{"garbage", std::string("GET / HTTP/1.1\r\n\r\n"), "exceeds"}),
    [](const ::testing::TestParamInfo<BrokenCase>& param_info) {
      std::string n = param_info.param.name;
      for (char& ch : n) {
        if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return n;
    });

TEST(FrameTest, MaxFrameIsAccepted) {
  const std::string body(kDefaultMaxFrame - kHeaderSize, 'x');
  const std::string f = EncodeFrame(0, 1, 1, 1, body);
  FrameDecoder d(FrameDecoder::Sender::kClient);
  d.Feed(f.data(), f.size());
  Frame out;
  ASSERT_EQ(d.Next(&out), Status::kFrame);
  EXPECT_EQ(out.body.size(), body.size());
}

TEST(FrameTest, ConfigurableMaxFrame) {
  const std::string f = EncodeFrame(0, 1, 1, 1, std::string(100, 'x'));
  FrameDecoder d(FrameDecoder::Sender::kClient, 64);
  d.Feed(f.data(), f.size());
  Frame out;
  EXPECT_EQ(d.Next(&out), Status::kBroken);
}

TEST(FrameTest, ServerMaySetResponseAndPushFlags) {
  std::string s;
  AppendFrame(&s, kFlagResponse, 2, 1, 9, "\x80");
  AppendFrame(&s, kFlagPush, 5, 100, 0, "\x80");
  FrameDecoder d(FrameDecoder::Sender::kServer);
  d.Feed(s.data(), s.size());
  Frame out;
  ASSERT_EQ(d.Next(&out), Status::kFrame);
  EXPECT_EQ(out.header.flags, kFlagResponse);
  ASSERT_EQ(d.Next(&out), Status::kFrame);
  EXPECT_EQ(out.header.flags, kFlagPush);
  const std::string bad = RawHeader(17, 1, 4) + "\x80";
  d.Feed(bad.data(), bad.size());
  EXPECT_EQ(d.Next(&out), Status::kBroken);
}

TEST(FrameTest, ShrinkIfEmptyReleasesMemory) {
  FrameDecoder d(FrameDecoder::Sender::kClient);
  const std::string f = EncodeFrame(0, 1, 1, 1, std::string(30000, 'x'));
  d.Feed(f.data(), f.size());
  Frame out;
  ASSERT_EQ(d.Next(&out), Status::kFrame);
  d.ShrinkIfEmpty();
  EXPECT_EQ(d.buffered(), 0u);
  // Still usable afterwards.
  d.Feed(f.data(), f.size());
  EXPECT_EQ(d.Next(&out), Status::kFrame);
}

}  // namespace
}  // namespace imbus::codec
