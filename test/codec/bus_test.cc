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

// ReplyMeta as edges and brokers knew it before busy_ms was appended.
struct ReplyMetaWithoutBusy {
  uint64_t rid = 0;
  uint64_t conn = 0;
  uint32_t seq = 0;
  uint16_t service = 0;
  uint16_t command = 0;
  uint8_t action = 0;
  SessionInfo session;
  uint64_t kick_uid = 0;
  std::string kick_reason;
  MSGPACK_DEFINE(rid, conn, seq, service, command, action, session, kick_uid, kick_reason);
};

TEST(BusTest, BusyHintIsAppendedSoOldAndNewPeersReadEachOther) {
  ReplyMetaWithoutBusy old;
  old.conn = 4;
  old.seq = 9;
  ReplyMeta now;
  ASSERT_TRUE(UnpackMeta(PackMeta(old), &now));
  EXPECT_EQ(now.seq, 9u);
  EXPECT_EQ(now.busy_ms, 0u) << "an old broker's reply carries no hint";

  now.busy_ms = 125;
  ReplyMetaWithoutBusy back;
  ASSERT_TRUE(UnpackMeta(PackMeta(now), &back)) << "an old edge ignores the hint";
  EXPECT_EQ(back.conn, 4u);
  ReplyMeta again;
  ASSERT_TRUE(UnpackMeta(PackMeta(now), &again));
  EXPECT_EQ(again.busy_ms, 125u);
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

namespace imbus::codec {
namespace {

// The Heartbeat and Ready of builds before kFeatureBatch.
struct HeartbeatBeforeFeatures {
  uint32_t load = 0;
  uint64_t incarnation = 0;
  MSGPACK_DEFINE(load, incarnation);
};
struct ReadyBeforeFeatures {
  std::string role, name;
  std::vector<std::string> services;
  std::string host;
  uint16_t port = 0;
  MSGPACK_DEFINE(role, name, services, host, port);
};

TEST(BusBatchTest, ItemsComeBackInOrderWithEmptyAndBinaryParts) {
  BatchWriter w;
  const std::string binary("a\0b\xff", 4);
  w.Add(BusType::kReply, "meta1", "body1");
  w.Add(BusType::kPush, "", "");
  w.Add(BusType::kKick, binary, std::string(70000, 'x'));
  EXPECT_EQ(w.count(), 3u);
  BatchReader r(w.data());
  BusType t{};
  std::string_view meta, body;
  ASSERT_TRUE(r.Next(&t, &meta, &body));
  EXPECT_EQ(t, BusType::kReply);
  EXPECT_EQ(meta, "meta1");
  EXPECT_EQ(body, "body1");
  ASSERT_TRUE(r.Next(&t, &meta, &body));
  EXPECT_EQ(t, BusType::kPush);
  EXPECT_TRUE(meta.empty());
  EXPECT_TRUE(body.empty());
  ASSERT_TRUE(r.Next(&t, &meta, &body));
  EXPECT_EQ(t, BusType::kKick);
  EXPECT_EQ(meta, binary);
  EXPECT_EQ(body.size(), 70000u);
  EXPECT_FALSE(r.Next(&t, &meta, &body));
  EXPECT_TRUE(r.ok());
  w.Clear();
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.bytes(), 0u);
}

TEST(BusBatchTest, TruncatedOrNestedBatchesStopAtTheBadItem) {
  BatchWriter w;
  w.Add(BusType::kReply, "m", "b");
  w.Add(BusType::kPush, "meta", "body");
  const std::string whole = w.data();
  // Every cut inside the second item: the first still reads, then the reader fails.
  for (size_t cut = 12; cut < whole.size(); ++cut) {  // the first item is 11 bytes
    BatchReader r(std::string_view(whole).substr(0, cut));
    BusType t{};
    std::string_view meta, body;
    EXPECT_TRUE(r.Next(&t, &meta, &body)) << cut;
    EXPECT_FALSE(r.Next(&t, &meta, &body)) << cut;
    EXPECT_FALSE(r.ok()) << cut;
  }
  // A length past the end.
  std::string lying = whole;
  lying[1] = '\x7f';
  BatchReader bad(lying);
  BusType t{};
  std::string_view meta, body;
  EXPECT_FALSE(bad.Next(&t, &meta, &body));
  EXPECT_FALSE(bad.ok());
  // A batch inside a batch is refused.
  BatchWriter nested;
  nested.Add(BusType::kBatch, "", whole);
  BatchReader inner(nested.data());
  EXPECT_FALSE(inner.Next(&t, &meta, &body));
  EXPECT_FALSE(inner.ok());
}

TEST(BusBatchTest, FeaturesAreAppendedSoOldAndNewPeersReadEachOther) {
  Heartbeat ack{0, 42, kFeatureBatch};
  HeartbeatBeforeFeatures old_peer;
  ASSERT_TRUE(UnpackMeta(PackMeta(ack), &old_peer)) << "an old peer ignores the features";
  EXPECT_EQ(old_peer.incarnation, 42u);
  Heartbeat from_old_broker;
  ASSERT_TRUE(UnpackMeta(PackMeta(HeartbeatBeforeFeatures{0, 7}), &from_old_broker));
  EXPECT_EQ(from_old_broker.features, 0u) << "an old broker takes no batches";

  ReadyBeforeFeatures old_ready{"edge", "e1", {}, "127.0.0.1", 7000};
  Ready ready;
  ASSERT_TRUE(UnpackMeta(PackMeta(old_ready), &ready));
  EXPECT_EQ(ready.port, 7000);
  EXPECT_EQ(ready.features, 0u) << "an old edge gets no batches";
  ready.features = kFeatureBatch;
  ASSERT_TRUE(UnpackMeta(PackMeta(ready), &old_ready)) << "an old broker ignores them";
}

}  // namespace
}  // namespace imbus::codec
