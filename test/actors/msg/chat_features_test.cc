// Issue 18 on the real stack: read receipts (to the message sender's devices and the
// reader's other devices, coalesced under a burst of ACKs, switchable), typing
// notices (never stored, never to a non-member), recall / edit (windows, pushes to
// every member, final state in SYNC and HISTORY, recalled text gone from the
// database) and delete-from-own-view.
#include <gtest/gtest.h>

#include "codec/commands.h"
#include "test/actors/msg/msg_test_util.h"

namespace imbus::testing {
namespace {

using codec::Code;
using std::chrono::milliseconds;
using std::chrono::seconds;

class ChatFeaturesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_.StartBroker();
    stack_.StartEdge();
    stack_.StartActor("auth");
    stack_.StartActor("msg", 1);  // one worker: coalescing is per worker
    ASSERT_TRUE(WaitWorkers(stack_, "auth", 1));
    ASSERT_TRUE(WaitWorkers(stack_, "msg", 1));
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << stack_.Logs();
  }
  int64_t Count(const std::string& sql, std::vector<actors::DbParam> params = {}) {
    actors::Db db = StackDb(stack_, SharedMariaDb());
    return db.Query(sql, params).rows.at(0).Int(0).value_or(-1);
  }
  void Exec(const std::string& sql, std::vector<actors::DbParam> params) {
    actors::Db db = StackDb(stack_, SharedMariaDb());
    db.Query(sql, params);
  }

  Stack stack_;
};

// Pushes of one command collected for `window`.
std::vector<client::Push> Collect(client::Client& c, uint16_t command, milliseconds window) {
  std::vector<client::Push> out;
  const auto deadline = std::chrono::steady_clock::now() + window;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return out;
    std::optional<client::Push> p = c.connection().WaitPush(left);
    if (!p) return out;
    if (p->service == codec::ToWire(codec::Service::kMsg) && p->command == command) {
      out.push_back(std::move(*p));
    }
  }
}

std::vector<client::ReadReceipt> Reads(client::Client& c, milliseconds window) {
  std::vector<client::ReadReceipt> out;
  for (const client::Push& p : Collect(c, codec::msg::kRead, window)) {
    if (auto r = client::ReadFromPush(p)) out.push_back(*r);
  }
  return out;
}

TEST_F(ChatFeaturesTest, ReadReceiptsReachSenderAndReaderDevicesCoalescedAndCanBeTurnedOff) {
  TestUser alice = RegisterUser(stack_, "ra"), bob = RegisterUser(stack_, "rb");
  client::Client phone = LoggedIn(stack_, alice, "phone");
  client::Client laptop = LoggedIn(stack_, alice, "laptop");
  client::Client b1 = LoggedIn(stack_, bob, "b1");
  client::Client b2 = LoggedIn(stack_, bob, "b2");
  constexpr uint64_t kBurst = 30;
  std::string conv;
  for (uint64_t i = 1; i <= kBurst; ++i) {
    auto sent = client::SendToUser(phone, bob.uid, "r" + std::to_string(i), "m");
    ASSERT_TRUE(sent.ok()) << sent.Describe();
    conv = sent.value.conv;
  }
  (void)Collect(laptop, codec::msg::kMessage, milliseconds(300));
  (void)Collect(b2, codec::msg::kMessage, milliseconds(100));

  // A burst of ACKs, pipelined on one connection: 1, 2, ..., 30.
  std::vector<uint32_t> seqs;
  for (uint64_t i = 1; i <= kBurst; ++i) {
    codec::MapWriter w(2);
    w.Key("conv").Str(conv).Key("seq").Uint(i);
    seqs.push_back(
        b1.connection().Send(codec::ToWire(codec::Service::kMsg), codec::msg::kAck, w.Finish()));
  }
  for (uint32_t s : seqs) ASSERT_TRUE(b1.connection().WaitResponse(s, seconds(10)).ok());

  // Both of alice's devices and bob's other device learn it; each gets a handful of
  // pushes at most (one per 300 ms window), the last with the highest seq.
  for (client::Client* c : {&phone, &laptop, &b2}) {
    std::vector<client::ReadReceipt> reads = Reads(*c, milliseconds(1500));
    ASSERT_FALSE(reads.empty());
    EXPECT_LE(reads.size(), 3u) << "a burst of " << kBurst << " ACKs was not coalesced";
    EXPECT_EQ(reads.back().conv, conv);
    EXPECT_EQ(reads.back().uid, bob.uid);
    EXPECT_EQ(reads.back().seq, kBurst);
  }
  // CONVERSATIONS shows alice how far bob has read.
  auto convs = client::Conversations(phone);
  ASSERT_TRUE(convs.ok()) << convs.Describe();
  ASSERT_EQ(convs.value.size(), 1u);
  ASSERT_TRUE(convs.value[0].peer_acked_seq.has_value());
  EXPECT_EQ(*convs.value[0].peer_acked_seq, kBurst);

  // Receipts off: alice hears nothing (and CONVERSATIONS hides it); bob's own other
  // device still learns what he read.
  auto off = client::SetReadReceipts(b1, false);
  ASSERT_TRUE(off.ok()) << off.Describe();
  EXPECT_FALSE(off.value);
  ASSERT_TRUE(client::SendToUser(phone, bob.uid, "r-last", "one more").ok());
  (void)Collect(b2, codec::msg::kMessage, milliseconds(200));
  ASSERT_TRUE(client::Ack(b1, conv, kBurst + 1).ok());
  std::vector<client::ReadReceipt> own = Reads(b2, milliseconds(1500));
  ASSERT_EQ(own.size(), 1u);
  EXPECT_EQ(own[0].seq, kBurst + 1);
  EXPECT_TRUE(Reads(phone, milliseconds(300)).empty());
  convs = client::Conversations(phone);
  ASSERT_TRUE(convs.ok());
  EXPECT_FALSE(convs.value.at(0).peer_acked_seq.has_value());
  // An ACK that does not raise the position sends nothing.
  ASSERT_TRUE(client::Ack(b1, conv, 3).ok());
  EXPECT_TRUE(Reads(b2, milliseconds(800)).empty());
}

TEST_F(ChatFeaturesTest, TypingIsNeverStoredAndNeverReachesANonMember) {
  TestUser a = RegisterUser(stack_, "ta"), b = RegisterUser(stack_, "tb"),
           outsider = RegisterUser(stack_, "to");
  actors::Db db = StackDb(stack_, SharedMariaDb());
  const uint64_t gid = CreateGroupInDb(db, {a.uid, b.uid});
  const std::string group = "g:" + std::to_string(gid);
  const std::string direct =
      "d:" + std::to_string(std::min(a.uid, b.uid)) + ":" + std::to_string(std::max(a.uid, b.uid));
  client::Client ca = LoggedIn(stack_, a), cb = LoggedIn(stack_, b),
                 co = LoggedIn(stack_, outsider);
  const std::string rows =
      "SELECT (SELECT COUNT(*) FROM messages) + (SELECT COUNT(*) FROM acks)"
      " + (SELECT COUNT(*) FROM hidden_messages)";
  const int64_t before = Count(rows);

  for (const std::string& conv : {group, direct}) {
    auto t = client::Typing(ca, conv);
    ASSERT_TRUE(t.ok()) << t.Describe();
    EXPECT_TRUE(t.value);
    std::vector<client::Push> got = Collect(cb, codec::msg::kTypingNotice, milliseconds(1000));
    ASSERT_EQ(got.size(), 1u) << conv;
    EXPECT_EQ(got[0].body.GetString("conv"), conv);
    EXPECT_EQ(got[0].body.GetUint("uid"), a.uid);
    // Again at once: rate-limited, nothing pushed.
    auto again = client::Typing(ca, conv);
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(again.value);
    EXPECT_TRUE(Collect(cb, codec::msg::kTypingNotice, milliseconds(300)).empty());
  }
  EXPECT_TRUE(Collect(co, codec::msg::kTypingNotice, milliseconds(300)).empty());
  EXPECT_TRUE(Collect(ca, codec::msg::kTypingNotice, milliseconds(100)).empty());  // not to self
  EXPECT_EQ(client::Typing(co, group).code, static_cast<int>(Code::kForbidden));
  EXPECT_EQ(client::Typing(co, direct).code, static_cast<int>(Code::kNotFound));
  EXPECT_EQ(Count(rows), before);
  auto s = client::Sync(cb);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s.value.messages.empty());
}

TEST_F(ChatFeaturesTest, RecallAndEditReachEveryMemberSurviveSyncHistoryAndRespectWindows) {
  TestUser a = RegisterUser(stack_, "ea"), b = RegisterUser(stack_, "eb"),
           c = RegisterUser(stack_, "ec");
  actors::Db db = StackDb(stack_, SharedMariaDb());
  const uint64_t gid = CreateGroupInDb(db, {a.uid, b.uid, c.uid});
  client::Client phone = LoggedIn(stack_, a, "phone"), laptop = LoggedIn(stack_, a, "laptop");
  client::Client cb = LoggedIn(stack_, b);
  const std::string secret = "the-secret-" + client::NewCmid();
  auto m1 = client::SendToGroup(phone, gid, "e1", secret);
  auto m2 = client::SendToGroup(phone, gid, "e2", "typo");
  auto m3 = client::SendToGroup(phone, gid, "e3", "third");
  ASSERT_TRUE(m1.ok() && m2.ok() && m3.ok());
  const std::string conv = m1.value.conv;
  (void)Collect(cb, codec::msg::kMessage, milliseconds(500));
  (void)Collect(laptop, codec::msg::kMessage, milliseconds(100));

  // Only the sender may recall or edit.
  EXPECT_EQ(client::Recall(cb, conv, 1).code, static_cast<int>(Code::kForbidden));
  EXPECT_EQ(client::Edit(cb, conv, 2, "hijack").code, static_cast<int>(Code::kForbidden));
  EXPECT_EQ(client::Recall(phone, conv, 99).code, static_cast<int>(Code::kNotFound));

  auto recalled = client::Recall(phone, conv, 1);
  ASSERT_TRUE(recalled.ok()) << recalled.Describe();
  EXPECT_TRUE(recalled.value.recalled);
  EXPECT_EQ(recalled.value.text, "");
  auto edited = client::Edit(phone, conv, 2, "fixed");
  ASSERT_TRUE(edited.ok()) << edited.Describe();
  EXPECT_EQ(edited.value.text, "fixed");
  EXPECT_GT(edited.value.edited_ts, 0);
  EXPECT_EQ(client::Edit(phone, conv, 1, "back").code, static_cast<int>(Code::kConflict));

  // Every member online (and the sender's other device) got both changes.
  for (client::Client* cl : {&cb, &laptop}) {
    std::vector<client::Push> ups = Collect(*cl, codec::msg::kUpdated, milliseconds(1000));
    ASSERT_EQ(ups.size(), 2u);
    auto u1 = client::UpdatedFromPush(ups[0]), u2 = client::UpdatedFromPush(ups[1]);
    ASSERT_TRUE(u1 && u2);
    EXPECT_EQ(u1->seq, 1u);
    EXPECT_TRUE(u1->recalled);
    EXPECT_EQ(u2->seq, 2u);
    EXPECT_EQ(u2->text, "fixed");
  }
  // The recalled text is gone from the database; the row keeps its seq.
  EXPECT_EQ(
      Count("SELECT COUNT(*) FROM messages WHERE LOCATE(?, text) > 0", {std::string_view(secret)}),
      0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM messages WHERE conv = ?", {std::string_view(conv)}), 3);

  // c was offline: SYNC and HISTORY show the final state.
  client::Client cc = LoggedIn(stack_, c);
  auto s = client::Sync(cc);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s.value.messages.size(), 3u);
  EXPECT_TRUE(s.value.messages[0].recalled);
  EXPECT_EQ(s.value.messages[0].text, "");
  EXPECT_EQ(s.value.messages[1].text, "fixed");
  EXPECT_EQ(s.value.messages[1].edited_ts, edited.value.edited_ts);
  auto h = client::History(cc, conv);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h.value.size(), 3u);
  EXPECT_TRUE(h.value[2].recalled);
  EXPECT_EQ(h.value[1].text, "fixed");
  EXPECT_FALSE(h.value[0].recalled);
  EXPECT_EQ(h.value[0].edited_ts, 0);

  // Outside the windows (2 min to recall, 24 h to edit): refused, nothing changes.
  Exec("UPDATE messages SET ts = ts - 3 * 60 * 1000 WHERE conv = ? AND seq = 3",
       {std::string_view(conv)});
  EXPECT_EQ(client::Recall(phone, conv, 3).code, static_cast<int>(Code::kForbidden));
  ASSERT_TRUE(client::Edit(phone, conv, 3, "third, edited").ok());
  Exec("UPDATE messages SET ts = ts - 25 * 3600 * 1000 WHERE conv = ? AND seq = 3",
       {std::string_view(conv)});
  EXPECT_EQ(client::Edit(phone, conv, 3, "too late").code, static_cast<int>(Code::kForbidden));
  h = client::History(cc, conv, 0, 1);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.value.at(0).text, "third, edited");

  // Delete from one's own view: gone from c's HISTORY and SYNC, still b's.
  ASSERT_TRUE(client::DeleteForMe(cc, conv, 3).ok());
  h = client::History(cc, conv);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h.value.size(), 2u);
  EXPECT_EQ(h.value[0].seq, 2u);
  auto hb = client::History(cb, conv);
  ASSERT_TRUE(hb.ok());
  EXPECT_EQ(hb.value.size(), 3u);
  s = client::Sync(cc);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s.value.messages.size(), 2u);
  EXPECT_EQ(client::DeleteForMe(cc, conv, 42).code, static_cast<int>(Code::kNotFound));
}

}  // namespace
}  // namespace imbus::testing
