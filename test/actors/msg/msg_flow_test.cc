// MSG end to end with real processes: online pushes (recipient, sender's other
// device, not the sending connection), offline delivery by SYNC + ACK, groups,
// limits, and dedup across a msg worker killed mid-request.
#include <gtest/gtest.h>

#include "codec/commands.h"
#include "test/actors/msg/msg_test_util.h"

namespace imbus::testing {
namespace {

using codec::Code;
using std::chrono::milliseconds;
using std::chrono::seconds;

class MsgFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_.StartBroker();
    stack_.StartEdge();
    stack_.StartActor("auth");
    msg_actor_ = stack_.StartActor("msg");
    ASSERT_TRUE(WaitWorkers(stack_, "auth", 1));
    ASSERT_TRUE(WaitWorkers(stack_, "msg", 1));
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << stack_.Logs();
  }
  int64_t Rows(uint64_t sender, const std::string& cmid) {
    actors::Db db = StackDb(stack_, SharedMariaDb());
    return db
        .Query("SELECT COUNT(*) FROM messages WHERE sender = ? AND cmid = ?",
               {sender, std::string_view(cmid)})
        .rows.at(0)
        .Int(0)
        .value_or(-1);
  }

  Stack stack_;
  size_t msg_actor_ = 0;
};

TEST_F(MsgFlowTest, OnlineDirectMessageReachesRecipientAndSendersOtherDevice) {
  TestUser alice = RegisterUser(stack_, "alice"), bob = RegisterUser(stack_, "bob");
  client::Client phone = LoggedIn(stack_, alice, "phone");
  client::Client laptop = LoggedIn(stack_, alice, "laptop");
  client::Client b = LoggedIn(stack_, bob);

  auto sent = client::SendToUser(phone, bob.uid, "m1", "hello bob");
  ASSERT_TRUE(sent.ok()) << sent.Describe();
  EXPECT_EQ(sent.value.conv, "d:" + std::to_string(std::min(alice.uid, bob.uid)) + ":" +
                                 std::to_string(std::max(alice.uid, bob.uid)));
  EXPECT_EQ(sent.value.seq, 1u);

  for (client::Client* c : {&b, &laptop}) {
    std::optional<client::Message> m = WaitMessage(*c, seconds(5));
    ASSERT_TRUE(m);
    EXPECT_EQ(m->conv, sent.value.conv);
    EXPECT_EQ(m->seq, 1u);
    EXPECT_EQ(m->from, alice.uid);
    EXPECT_EQ(m->ts, sent.value.ts);
    EXPECT_EQ(m->text, "hello bob");
    EXPECT_EQ(m->cmid, "m1");
    EXPECT_EQ(m->gid, 0u);
  }
  // The sending connection gets the reply only.
  EXPECT_FALSE(WaitMessage(phone, milliseconds(700)));

  // Replies flow the other way on the same conversation, seq 2.
  auto back = client::SendToUser(b, alice.uid, "r1", "hi alice");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back.value.seq, 2u);
  EXPECT_EQ(WaitMessage(phone, seconds(5)).value_or(client::Message{}).text, "hi alice");
}

TEST_F(MsgFlowTest, OfflineRecipientGetsMessagesBySyncThenAckEmptiesIt) {
  TestUser alice = RegisterUser(stack_, "alice"), bob = RegisterUser(stack_, "bob");
  client::Client a = LoggedIn(stack_, alice);
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(
        client::SendToUser(a, bob.uid, "c" + std::to_string(i), "m" + std::to_string(i)).ok());
  }
  client::Client b = LoggedIn(stack_, bob);
  auto s = client::Sync(b);
  ASSERT_TRUE(s.ok()) << s.Describe();
  ASSERT_EQ(s.value.messages.size(), 3u);
  EXPECT_FALSE(s.value.more);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(s.value.messages[i].seq, i + 1);
    EXPECT_EQ(s.value.messages[i].text, "m" + std::to_string(i + 1));
  }
  ASSERT_TRUE(client::Ack(b, s.value.messages.back().conv, 3).ok());
  auto again = client::Sync(b);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again.value.messages.empty());
  auto convs = client::Conversations(b);
  ASSERT_TRUE(convs.ok());
  ASSERT_EQ(convs.value.size(), 1u);
  EXPECT_EQ(convs.value[0].last_seq, 3u);
  EXPECT_EQ(convs.value[0].acked_seq, 3u);
  auto hist = client::History(b, convs.value[0].conv, 0, 2);
  ASSERT_TRUE(hist.ok());
  ASSERT_EQ(hist.value.size(), 2u);
  EXPECT_EQ(hist.value[0].seq, 3u);
  EXPECT_EQ(hist.value[1].seq, 2u);
}

TEST_F(MsgFlowTest, GroupMessageReachesOnlineMembersByPushAndOfflineBySync) {
  TestUser a = RegisterUser(stack_, "ga"), b = RegisterUser(stack_, "gb"),
           c = RegisterUser(stack_, "gc"), outsider = RegisterUser(stack_, "go");
  actors::Db db = StackDb(stack_, SharedMariaDb());
  const uint64_t gid = CreateGroupInDb(db, {a.uid, b.uid, c.uid});
  client::Client ca = LoggedIn(stack_, a), cb = LoggedIn(stack_, b),
                 co = LoggedIn(stack_, outsider);
  auto sent = client::SendToGroup(ca, gid, "g1", "hello group");
  ASSERT_TRUE(sent.ok()) << sent.Describe();
  EXPECT_EQ(sent.value.conv, "g:" + std::to_string(gid));
  std::optional<client::Message> m = WaitMessage(cb, seconds(5));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->gid, gid);
  EXPECT_EQ(m->from, a.uid);
  EXPECT_EQ(m->seq, 1u);
  EXPECT_FALSE(WaitMessage(co, milliseconds(500)));  // not a member

  client::Client cc = LoggedIn(stack_, c);
  auto s = client::Sync(cc);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s.value.messages.size(), 1u);
  EXPECT_EQ(s.value.messages[0].text, "hello group");
  EXPECT_EQ(s.value.messages[0].gid, gid);

  EXPECT_EQ(client::SendToGroup(co, gid, "x", "let me in").code,
            static_cast<int>(Code::kForbidden));
  EXPECT_EQ(client::History(co, sent.value.conv).code, static_cast<int>(Code::kForbidden));
}

TEST_F(MsgFlowTest, Limits) {
  TestUser a = RegisterUser(stack_, "la"), b = RegisterUser(stack_, "lb");
  client::Client ca = LoggedIn(stack_, a);
  EXPECT_EQ(client::SendToUser(ca, b.uid, "big", std::string(8193, 'x')).code,
            static_cast<int>(Code::kTooLarge));
  EXPECT_TRUE(client::SendToUser(ca, b.uid, "max", std::string(8192, 'x')).ok());
  EXPECT_EQ(client::SendToUser(ca, 987654321, "nobody", "hi").code,
            static_cast<int>(Code::kNotFound));
  EXPECT_EQ(client::SendToGroup(ca, 987654321, "nogroup", "hi").code,
            static_cast<int>(Code::kNotFound));
  EXPECT_EQ(client::SendToUser(ca, b.uid, "", "hi").code, static_cast<int>(Code::kBadRequest));
  EXPECT_EQ(client::SendToUser(ca, b.uid, "bad", "\xC3\x28").code,
            static_cast<int>(Code::kBadRequest));
  client::Client anon = Connected(stack_);
  EXPECT_EQ(client::SendToUser(anon, b.uid, "anon", "hi").code,
            static_cast<int>(Code::kUnauthenticated));
}

// kill -9 the msg worker right after a SEND left: whatever happened to it, a resend
// with the same cmid (to a fresh worker) succeeds and exactly one row exists.
TEST_F(MsgFlowTest, ResendAfterWorkerKilledStoresExactlyOnce) {
  TestUser a = RegisterUser(stack_, "ka"), b = RegisterUser(stack_, "kb");
  client::Client ca = LoggedIn(stack_, a, {}, seconds(20));
  for (int round = 0; round < 3; ++round) {
    const std::string cmid = "kill" + std::to_string(round);
    codec::MapWriter w(3);
    w.Key("to").Uint(b.uid).Key("cmid").Str(cmid).Key("text").Str("survive");
    const uint32_t seq =
        ca.connection().Send(codec::ToWire(codec::Service::kMsg), codec::msg::kSend, w.Finish());
    ASSERT_NE(seq, 0u);
    if (round > 0) std::this_thread::sleep_for(milliseconds(round * 3));
    stack_.actor(msg_actor_).Kill();
    client::Response first = ca.connection().WaitResponse(seq, seconds(20));
    msg_actor_ = stack_.StartActor("msg");
    ASSERT_TRUE(WaitWorkers(stack_, "msg", 1));
    auto again = SendUntilOk(stack_, ca, a, false, b.uid, cmid, "survive");
    ASSERT_TRUE(again.ok()) << again.Describe();
    if (first.ok()) {
      EXPECT_EQ(*first.body.GetUint("seq"), again.value.seq);
    }
    EXPECT_EQ(Rows(a.uid, cmid), 1);
    auto again2 = SendUntilOk(stack_, ca, a, false, b.uid, cmid, "survive");
    ASSERT_TRUE(again2.ok()) << again2.Describe();
    EXPECT_EQ(again2.value.seq, again.value.seq);
    EXPECT_EQ(Rows(a.uid, cmid), 1);
  }
  // seqs stayed gap-free: 1..3.
  client::Client cb = LoggedIn(stack_, b);
  auto s = client::Sync(cb);
  // A killed worker may still be listed by the broker for a heartbeat or two.
  for (int i = 0; i < 20 && s.code == static_cast<int>(Code::kUnavailable); ++i) {
    std::this_thread::sleep_for(milliseconds(500));
    s = client::Sync(cb);
  }
  ASSERT_TRUE(s.ok()) << s.Describe();
  ASSERT_EQ(s.value.messages.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(s.value.messages[i].seq, i + 1);
}

}  // namespace
}  // namespace imbus::testing
