// Bus envelopes: round trips and refusal of bytes that are not the expected struct.
#include <gtest/gtest.h>

#include "codec/bus.h"
#include "net/clock.h"

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

// RequestMeta as edges and workers knew it before deadline_ms was appended.
struct RequestMetaWithoutDeadline {
  uint64_t rid = 0;
  uint64_t conn = 0;
  uint32_t seq = 0;
  uint16_t service = 0;
  uint16_t command = 0;
  uint64_t uid = 0;
  std::string device;
  std::string peer_host;
  uint16_t peer_port = 0;
  MSGPACK_DEFINE(rid, conn, seq, service, command, uid, device, peer_host, peer_port);
};

TEST(BusTest, DeadlineIsAppendedSoOldAndNewPeersReadEachOther) {
  RequestMetaWithoutDeadline old;
  old.conn = 4;
  old.seq = 9;
  old.peer_port = 7000;
  RequestMeta now;
  ASSERT_TRUE(UnpackMeta(PackMeta(old), &now));
  EXPECT_EQ(now.seq, 9u);
  EXPECT_EQ(now.peer_port, 7000);
  EXPECT_EQ(now.deadline_ms, 0) << "an old edge's request has no deadline";

  now.deadline_ms = net::WallNowMs() + 1000;
  RequestMetaWithoutDeadline back;
  ASSERT_TRUE(UnpackMeta(PackMeta(now), &back)) << "an old worker ignores the deadline";
  EXPECT_EQ(back.conn, 4u);
}

TEST(BusTest, WhichPeerMaySendWhatToTheBroker) {
  for (BusType t : {BusType::kRequest, BusType::kBind, BusType::kUnbind, BusType::kDeparted}) {
    EXPECT_TRUE(MaySendToBroker(t, /*from_edge=*/true)) << static_cast<int>(t);
    EXPECT_FALSE(MaySendToBroker(t, /*from_edge=*/false)) << static_cast<int>(t);
  }
  for (BusType t : {BusType::kReply, BusType::kPush, BusType::kQuery}) {
    EXPECT_FALSE(MaySendToBroker(t, true)) << static_cast<int>(t);
    EXPECT_TRUE(MaySendToBroker(t, false)) << static_cast<int>(t);
  }
  EXPECT_TRUE(MaySendToBroker(BusType::kHeartbeat, true));
  EXPECT_TRUE(MaySendToBroker(BusType::kHeartbeat, false));
  for (BusType t : {BusType::kKick, BusType::kUnknownPeer, BusType::kNotActive}) {
    EXPECT_FALSE(MaySendToBroker(t, true)) << static_cast<int>(t);
    EXPECT_FALSE(MaySendToBroker(t, false)) << static_cast<int>(t);
  }
}

TEST(BusTest, ReplyMetaForEchoesTheRequest) {
  RequestMeta req;
  req.rid = 9;
  req.conn = 8;
  req.seq = 7;
  req.service = 5;
  req.command = 1;
  req.uid = 42;
  const ReplyMeta r = ReplyMetaFor(req);
  EXPECT_EQ(r.rid, 9u);
  EXPECT_EQ(r.conn, 8u);
  EXPECT_EQ(r.seq, 7u);
  EXPECT_EQ(r.service, 5u);
  EXPECT_EQ(r.command, 1u);
  EXPECT_EQ(r.action, 0u);
}

}  // namespace
}  // namespace imbus::codec
