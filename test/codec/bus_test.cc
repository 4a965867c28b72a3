// Bus envelopes: round trips and refusal of bytes that are not the expected struct.
#include <gtest/gtest.h>

#include "codec/bus.h"

namespace imbus::codec {
namespace {

TEST(BusTest, ReplyMetaRoundTrip) {
  ReplyMeta m;
  m.rid = 77;
  m.conn = 5;
  m.seq = 9;
  m.service = 2;
  m.command = 2;
  m.action = static_cast<uint8_t>(SessionAction::kLogin);
  m.session.uid = 12;
  m.session.device = "phone";
  m.session.public_host = "10.0.0.1";
  m.session.public_port = 4444;
  m.kick_uid = 3;
  ReplyMeta back;
  ASSERT_TRUE(UnpackMeta(PackMeta(m), &back));
  EXPECT_EQ(back.rid, 77u);
  EXPECT_EQ(back.session.uid, 12u);
  EXPECT_EQ(back.session.device, "phone");
  EXPECT_EQ(back.session.public_port, 4444);
  EXPECT_EQ(back.kick_uid, 3u);
}

TEST(BusTest, WrongShapeIsRefusedWithoutThrowing) {
  RequestMeta r;
  EXPECT_FALSE(UnpackMeta(std::string("\x80", 1), &r));  // a map, not an array
  EXPECT_FALSE(UnpackMeta(std::string("\xdd\xff\xff\xff\xff", 5), &r));
  EXPECT_FALSE(UnpackMeta("", &r));
  PushMeta p;
  p.uids = {1, 2, 3};
  EdgePushMeta e;
  EXPECT_FALSE(UnpackMeta(PackMeta(Heartbeat{3}), &e));
  PushMeta back;
  ASSERT_TRUE(UnpackMeta(PackMeta(p), &back));
  EXPECT_EQ(back.uids.size(), 3u);
}

}  // namespace
}  // namespace imbus::codec
