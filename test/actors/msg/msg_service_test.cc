// MsgService on a real MariaDB, called directly (no processes): replies, pushes,
// error codes, dedup (also inside one batch), ACK/SYNC/HISTORY/CONVERSATIONS, and
// several "workers" (threads with their own Db) writing one conversation at once.
#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <functional>
#include <random>
#include <set>
#include <thread>

#include "actors/db/schema.h"
#include "actors/msg/msg_service.h"
#include "codec/commands.h"
#include "codec/frame.h"
#include "test/support/actors_db_config.h"
#include "test/support/mariadb.h"
#include "test/support/old_schema.h"

namespace imbus::actors::msg {
namespace {

using codec::Code;

DbConfig TestDbConfig(const std::string& database) {
  return imbus::testing::ActorsDbConfig(database);
}

// Keeps metas and bodies alive for the Requests that point at them.
class Calls {
 public:
  // owner: the broker routed it to this worker as its conversation's owner.
  const Request& Add(uint64_t uid, uint16_t command, const std::string& body, bool owner = false) {
    codec::RequestMeta& m = metas_.emplace_back();
    m.rid = ++rid_;
    m.uid = uid;
    m.owner = owner;
    m.service = codec::ToWire(codec::Service::kMsg);
    m.command = command;
    codec::Body& b = bodies_.emplace_back();
    std::string error;
    EXPECT_TRUE(codec::Body::Parse(body, &b, &error)) << error;
    return requests_.emplace_back(Request{m, b});
  }

 private:
  uint64_t rid_ = 0;
  std::deque<codec::RequestMeta> metas_;
  std::deque<codec::Body> bodies_;
  std::deque<Request> requests_;
};

std::string Send(const char* key, uint64_t id, const std::string& cmid, const std::string& text) {
  codec::MapWriter w(3);
  w.Key(key).Uint(id).Key("cmid").Str(cmid).Key("text").Str(text);
  return w.Finish();
}

struct Outcome {
  Code code = Code::kOk;
  std::string error;
  codec::Body body;
  std::vector<Push> pushes;
  size_t body_bytes = 0;
};

class MsgServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = TestDbConfig(imbus::testing::NewDatabaseName("msg"));
    db_ = std::make_unique<Db>(config_);
    PrepareDatabase(db_.get());
    service_ = std::make_unique<MsgService>(db_.get(), MsgService::Options{});
  }

  uint64_t AddUser(const std::string& name) {
    return db_->Query("INSERT INTO users (name, pwhash) VALUES (?, 'x')", {std::string_view(name)})
        .insert_id;
  }
  uint64_t AddGroup(std::vector<uint64_t> members) {
    const uint64_t gid =
        db_->Query("INSERT INTO chat_groups (name, owner_uid) VALUES ('g', ?)", {members.at(0)})
            .insert_id;
    for (uint64_t uid : members) {
      db_->Query("INSERT INTO group_members (gid, uid, role) VALUES (?, ?, 'member')", {gid, uid});
    }
    return gid;
  }
  int64_t Count(const std::string& sql) { return db_->Query(sql).rows.at(0).Int(0).value_or(-1); }

  Outcome Call(uint64_t uid, uint16_t command, const std::string& body) {
    Calls calls;
    const Request& req = calls.Add(uid, command, body);
    Reply reply;
    Outcome out;
    try {
      service_->Handle(req, &reply);
    } catch (const RequestError& e) {
      out.code = e.code();
      out.error = e.what();
      return out;
    }
    std::string error;
    EXPECT_TRUE(codec::Body::Parse(reply.body, &out.body, &error));
    out.body_bytes = reply.body.size();
    out.pushes = std::move(reply.pushes);
    return out;
  }

  std::vector<uint64_t> HistorySeqs(uint64_t uid, const std::string& conv) {
    codec::MapWriter w(2);
    w.Key("conv").Str(conv).Key("limit").Uint(100);
    Outcome o = Call(uid, codec::msg::kHistory, w.Finish());
    EXPECT_EQ(o.code, Code::kOk) << o.error;
    std::vector<uint64_t> seqs;
    const msgpack::object* a = o.body.Find("messages");
    for (uint32_t i = 0; a != nullptr && i < a->via.array.size; ++i) {
      const msgpack::object& m = a->via.array.ptr[i];
      for (uint32_t k = 0; k < m.via.map.size; ++k) {
        if (std::string_view(m.via.map.ptr[k].key.via.str.ptr, m.via.map.ptr[k].key.via.str.size) ==
            "seq") {
          seqs.push_back(m.via.map.ptr[k].val.via.u64);
        }
      }
    }
    return seqs;
  }

  // Runs `workers` threads, each a worker with its own Db and MsgService handling
  // `batches` batches that make(w, b, calls) builds; returns how many items were not
  // answered OK (a batch that threw counts once).
  int RunWorkers(int workers, int batches,
                 const std::function<std::vector<BatchItem>(int, int, Calls&)>& make) {
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w) {
      threads.emplace_back([&, w] {
        Db db(config_);
        MsgService service(&db, MsgService::Options{});
        for (int b = 0; b < batches; ++b) {
          Calls calls;
          std::vector<BatchItem> items = make(w, b, calls);
          try {
            service.HandleBatch(items);
          } catch (const std::exception& e) {
            ADD_FAILURE() << e.what();
            ++failures;
          }
          for (const BatchItem& item : items) {
            if (item.code != Code::kOk && ++failures <= 3) {
              ADD_FAILURE() << "worker " << w << ": " << item.error;
            }
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
    return failures.load();
  }

  DbConfig config_;
  std::unique_ptr<Db> db_;
  std::unique_ptr<MsgService> service_;
};

TEST_F(MsgServiceTest, DirectSendRepliesStoresAndPushesToBothSides) {
  const uint64_t a = AddUser("alice"), b = AddUser("bob");
  Outcome o = Call(a, codec::msg::kSend, Send("to", b, "c1", "hello"));
  ASSERT_EQ(o.code, Code::kOk) << o.error;
  EXPECT_EQ(*o.body.GetString("conv"), DirectConv(a, b));
  EXPECT_EQ(*o.body.GetUint("seq"), 1u);
  EXPECT_GT(*o.body.GetInt("ts"), 1600000000000);
  ASSERT_EQ(o.pushes.size(), 1u);
  const Push& p = o.pushes[0];
  EXPECT_TRUE(p.skip_requester);
  EXPECT_EQ(std::set<uint64_t>(p.meta.uids.begin(), p.meta.uids.end()), (std::set<uint64_t>{a, b}));
  EXPECT_EQ(p.meta.command, codec::msg::kMessage);
  codec::Body pb;
  std::string error;
  ASSERT_TRUE(codec::Body::Parse(p.body, &pb, &error));
  EXPECT_EQ(*pb.GetString("text"), "hello");
  EXPECT_EQ(*pb.GetString("cmid"), "c1");
  EXPECT_EQ(*pb.GetUint("from"), a);
  EXPECT_EQ(*pb.GetUint("seq"), 1u);
  EXPECT_FALSE(pb.Has("gid"));

  EXPECT_EQ(*Call(b, codec::msg::kSend, Send("to", a, "c1", "back")).body.GetUint("seq"), 2u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM messages"), 2);
  // Both sides know the conv: an acks row each, at the seq of their own last message.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM acks"), 2);
  EXPECT_EQ(Count("SELECT acked_seq FROM acks WHERE uid = " + std::to_string(a)), 1);
  EXPECT_EQ(Count("SELECT acked_seq FROM acks WHERE uid = " + std::to_string(b)), 2);

  // Writing to oneself: d:a:a, pushed to a's other sessions only.
  Outcome self = Call(a, codec::msg::kSend, Send("to", a, "note", "memo"));
  ASSERT_EQ(self.code, Code::kOk) << self.error;
  EXPECT_EQ(*self.body.GetString("conv"), DirectConv(a, a));
  EXPECT_EQ(self.pushes.at(0).meta.uids, std::vector<uint64_t>{a});
}

// Offline push: a recipient with a device token and no live session gets one
// push_outbox row per new message, written with the message; online recipients,
// recipients without a token, the sender and resends get none.
TEST_F(MsgServiceTest, OfflineTokenHoldersGetOneOutboxRowPerNewMessage) {
  MemorySessions sessions;
  MsgService::Options o;
  o.sessions = &sessions;
  o.now_ms = [] { return int64_t{1000}; };
  service_ = std::make_unique<MsgService>(db_.get(), o);
  const uint64_t a = AddUser("pa"), b = AddUser("pb"), c = AddUser("pc"), d = AddUser("pd");
  for (uint64_t uid : {a, b, c}) {  // d has no token
    db_->Query(
        "INSERT INTO push_devices (platform, token, uid, created_ms) VALUES ('fcm', ?, ?, 1)",
        {std::string_view("t" + std::to_string(uid)), uid});
    db_->Query("UPDATE users SET push_device = 1 WHERE uid = ?", {uid});  // as REGISTER_DEVICE
  }
  sessions.Set(c, {codec::SessionInfo{}});  // c is online
  const uint64_t gid = AddGroup({a, b, c, d});

  EXPECT_EQ(Call(a, codec::msg::kSend, Send("to", b, "m1", "hi b")).code, Code::kOk);
  EXPECT_EQ(Call(a, codec::msg::kSend, Send("to", b, "m1", "hi b")).code, Code::kOk);  // resend
  EXPECT_EQ(Call(a, codec::msg::kSend, Send("to", c, "m2", "hi c")).code, Code::kOk);
  EXPECT_EQ(Call(a, codec::msg::kSend, Send("to", d, "m3", "hi d")).code, Code::kOk);
  EXPECT_EQ(Call(a, codec::msg::kSend, Send("to", a, "m4", "note")).code, Code::kOk);
  EXPECT_EQ(Call(b, codec::msg::kSend, Send("gid", gid, "m5", "hi all")).code, Code::kOk);
  EXPECT_EQ(Call(a, codec::msg::kSend, Send("gid", gid, "m6", "hi all")).code, Code::kOk);

  std::vector<std::string> rows;
  for (const DbRow& r :
       db_->Query("SELECT uid, conv, seq, sender, state, tries, due_ms FROM push_outbox"
                  " ORDER BY uid, conv, seq")
           .rows) {
    rows.push_back(std::to_string(*r.Uint(0)) + " " + *r.Str(1) + " " + std::to_string(*r.Uint(2)) +
                   " from " + std::to_string(*r.Uint(3)) + " state " + std::to_string(*r.Uint(4)) +
                   " tries " + std::to_string(*r.Uint(5)) + " due " + std::to_string(*r.Int(6)));
  }
  const std::string g = "g:" + std::to_string(gid);
  const std::string ab =
      "d:" + std::to_string(std::min(a, b)) + ":" + std::to_string(std::max(a, b));
  EXPECT_EQ(rows, (std::vector<std::string>{
                      std::to_string(a) + " " + g + " 1 from " + std::to_string(b) +
                          " state 0 tries 0 due 1000",
                      std::to_string(b) + " " + ab + " 1 from " + std::to_string(a) +
                          " state 0 tries 0 due 1000",
                      std::to_string(b) + " " + g + " 2 from " + std::to_string(a) +
                          " state 0 tries 0 due 1000",
                  }));
}

TEST_F(MsgServiceTest, ErrorCodes) {
  const uint64_t a = AddUser("alice"), b = AddUser("bob"), c = AddUser("carol");
  const uint64_t g = AddGroup({a, b});
  EXPECT_EQ(Call(a, codec::msg::kSend, Send("to", 999999, "x", "t")).code, Code::kNotFound);
  db_->Query("UPDATE users SET deleted_at = NOW(3), name = NULL WHERE uid = ?", {b});
  EXPECT_EQ(Call(a, codec::msg::kSend, Send("to", b, "x", "t")).code, Code::kNotFound);
  EXPECT_EQ(Call(a, codec::msg::kSend, Send("gid", 999999, "x", "t")).code, Code::kNotFound);
  EXPECT_EQ(Call(c, codec::msg::kSend, Send("gid", g, "x", "t")).code, Code::kForbidden);
  EXPECT_EQ(Call(a, codec::msg::kSend, Send("to", c, "x", std::string(8193, 'a'))).code,
            Code::kTooLarge);
  EXPECT_EQ(Call(a, codec::msg::kSend, Send("to", c, "x", "\xff")).code, Code::kBadRequest);
  // Without a login (uid 0) the dispatcher answers UNAUTHENTICATED before the service
  // (actors_dispatcher_test).
  EXPECT_EQ(Count("SELECT COUNT(*) FROM messages"), 0);
  // A message from a later-deleted user keeps its sender.
  ASSERT_EQ(Call(c, codec::msg::kSend, Send("to", a, "y", "t")).code, Code::kOk);
  db_->Query("UPDATE users SET deleted_at = NOW(3), name = NULL WHERE uid = ?", {c});
  codec::MapWriter h(1);
  h.Key("conv").Str(DirectConv(a, c));
  Outcome hist = Call(a, codec::msg::kHistory, h.Finish());
  ASSERT_EQ(hist.code, Code::kOk);
  EXPECT_EQ(hist.body.Find("messages")->via.array.size, 1u);
}

// The recipients of a whole batch are checked together (one query): each item still
// gets its own answer, and only the good ones are stored.
TEST_F(MsgServiceTest, OneBatchWithGoodAndBadRecipientsAnswersEachItem) {
  const uint64_t a = AddUser("alice"), b = AddUser("bob"), c = AddUser("carol");
  const uint64_t gone = AddUser("gone");
  db_->Query("UPDATE users SET deleted_at = NOW(3), name = NULL WHERE uid = ?", {gone});
  Calls calls;
  std::vector<BatchItem> items;
  auto add = [&](uint64_t from, const std::string& body) {
    items.push_back(BatchItem{&calls.Add(from, codec::msg::kSend, body), {}, Code::kOk, {}});
  };
  add(a, Send("to", b, "1", "to bob"));
  add(a, Send("to", 999999, "2", "to nobody"));
  add(a, Send("to", gone, "3", "to a deleted user"));
  add(a, Send("to", a, "4", "to myself"));
  add(a, Send("to", b, "1", "a repeat of item 0"));
  add(a, Send("to", c, "6", "\xff"));
  add(c, Send("to", b, "7", "carol to bob"));
  service_->HandleBatch(items);
  const std::vector<Code> want = {Code::kOk, Code::kNotFound,   Code::kNotFound, Code::kOk,
                                  Code::kOk, Code::kBadRequest, Code::kOk};
  ASSERT_EQ(items.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(items[i].code, want[i]) << "item " << i << ": " << items[i].error;
  }
  EXPECT_EQ(Count("SELECT COUNT(*) FROM messages"), 3);
  EXPECT_EQ(HistorySeqs(b, DirectConv(a, b)), (std::vector<uint64_t>{1}));
  EXPECT_EQ(HistorySeqs(b, DirectConv(b, c)), (std::vector<uint64_t>{1}));
}

// A batch bigger than one statement (64 rows) and of no power-of-two size: every item
// stored once with its own seq, whichever way the statements are cut and padded.
TEST_F(MsgServiceTest, ABatchOfManyConversationsStoresEachMessageOnce) {
  const uint64_t a = AddUser("sender");
  std::vector<uint64_t> to;
  for (int i = 0; i < 100; ++i) to.push_back(AddUser("r" + std::to_string(i)));
  Calls calls;
  std::vector<BatchItem> items;
  for (int i = 0; i < 137; ++i) {  // 100 conversations: 37 of them get a second message
    items.push_back(BatchItem{&calls.Add(a, codec::msg::kSend,
                                         Send("to", to[static_cast<size_t>(i % 100)],
                                              "c" + std::to_string(i), "m" + std::to_string(i))),
                              {},
                              Code::kOk,
                              {}});
  }
  service_->HandleBatch(items);
  for (size_t i = 0; i < items.size(); ++i) {
    ASSERT_EQ(items[i].code, Code::kOk) << "item " << i << ": " << items[i].error;
    codec::Body body;
    std::string error;
    ASSERT_TRUE(codec::Body::Parse(items[i].reply.body, &body, &error)) << error;
    EXPECT_EQ(*body.GetUint("seq"), i < 100 ? 1u : 2u) << "item " << i;
  }
  EXPECT_EQ(Count("SELECT COUNT(*) FROM messages"), 137);
  EXPECT_EQ(Count("SELECT COUNT(DISTINCT conv) FROM messages"), 100);
  EXPECT_EQ(Count("SELECT SUM(s) FROM (SELECT MAX(seq) s FROM messages GROUP BY conv) t"), 137);
  // Two members' rows per conversation; the sender's at their last message, the
  // recipient's at 0.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM acks"), 200);
  EXPECT_EQ(Count("SELECT SUM(acked_seq) FROM acks WHERE uid = " + std::to_string(a)), 137);
  EXPECT_EQ(Count("SELECT SUM(acked_seq) FROM acks WHERE uid <> " + std::to_string(a)), 0);
  EXPECT_EQ(HistorySeqs(to[5], DirectConv(a, to[5])), (std::vector<uint64_t>{2, 1}));
  EXPECT_EQ(HistorySeqs(to[50], DirectConv(a, to[50])), (std::vector<uint64_t>{1}));
}

// A worker that does not know a direct conversation takes it for new when neither
// of its members' acks rows exists (and then reads no tail). A new worker (an empty
// cache) must continue an existing conversation's seqs either way: from the table
// when the rows are there, and through the (conv, 1) collision when they are not.
TEST_F(MsgServiceTest, ANewWorkerContinuesExistingConversationsEvenWithoutTheirListRows) {
  const uint64_t a = AddUser("alice"), b = AddUser("bob"), c = AddUser("carol");
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Call(a, codec::msg::kSend, Send("to", b, "ab" + std::to_string(i), "x")).code,
              Code::kOk);
    ASSERT_EQ(Call(a, codec::msg::kSend, Send("to", c, "ac" + std::to_string(i), "x")).code,
              Code::kOk);
  }
  EXPECT_EQ(Count("SELECT COUNT(*) FROM acks"), 4);
  db_->Query("DELETE FROM acks WHERE conv = ?", {std::string_view(DirectConv(a, c))});

  service_ = std::make_unique<MsgService>(db_.get(), MsgService::Options{});
  Calls calls;
  std::vector<BatchItem> items;
  for (const auto& [to, cmid] :
       std::vector<std::pair<uint64_t, std::string>>{{b, "ab3"}, {c, "ac3"}, {b, "ab4"}}) {
    items.push_back(
        BatchItem{&calls.Add(a, codec::msg::kSend, Send("to", to, cmid, "y")), {}, Code::kOk, {}});
  }
  service_->HandleBatch(items);
  std::vector<uint64_t> seqs;
  for (const BatchItem& item : items) {
    ASSERT_EQ(item.code, Code::kOk) << item.error;
    codec::Body body;
    std::string error;
    ASSERT_TRUE(codec::Body::Parse(item.reply.body, &body, &error)) << error;
    seqs.push_back(*body.GetUint("seq"));
  }
  EXPECT_EQ(seqs, (std::vector<uint64_t>{4, 4, 5}));
  EXPECT_EQ(HistorySeqs(b, DirectConv(a, b)), (std::vector<uint64_t>{5, 4, 3, 2, 1}));
  EXPECT_EQ(HistorySeqs(c, DirectConv(a, c)), (std::vector<uint64_t>{4, 3, 2, 1}));
  // A conversation with messages gets no member rows again (its first message
  // writes them): a:c has the sender's row back only, raised to its message.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM acks"), 3);
  EXPECT_EQ(Count("SELECT acked_seq FROM acks WHERE uid = " + std::to_string(a) + " AND conv = '" +
                  DirectConv(a, c) + "'"),
            4);
  EXPECT_EQ(Count("SELECT acked_seq FROM acks WHERE uid = " + std::to_string(a) + " AND conv = '" +
                  DirectConv(a, b) + "'"),
            5);

  // A new pair of users: a new conversation numbered from 1, listed for both.
  const uint64_t d = AddUser("dave");
  service_ = std::make_unique<MsgService>(db_.get(), MsgService::Options{});
  Outcome o = Call(d, codec::msg::kSend, Send("to", c, "dc0", "z"));
  ASSERT_EQ(o.code, Code::kOk) << o.error;
  EXPECT_EQ(*o.body.GetUint("seq"), 1u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM acks"), 5);
}

TEST_F(MsgServiceTest, ResendingTheSameCmidReturnsTheFirstSeqAndStoresNothing) {
  const uint64_t a = AddUser("alice"), b = AddUser("bob");
  Outcome first = Call(a, codec::msg::kSend, Send("to", b, "same", "one"));
  Call(b, codec::msg::kSend, Send("to", a, "other", "two"));
  Outcome again = Call(a, codec::msg::kSend, Send("to", b, "same", "one"));
  ASSERT_EQ(again.code, Code::kOk);
  EXPECT_EQ(*again.body.GetUint("seq"), 1u);
  EXPECT_EQ(*again.body.GetInt("ts"), *first.body.GetInt("ts"));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM messages"), 2);
  EXPECT_EQ(Count("SELECT MAX(seq) FROM messages"), 2);
  // Another sender may use the same cmid.
  EXPECT_EQ(*Call(b, codec::msg::kSend, Send("to", a, "same", "x")).body.GetUint("seq"), 3u);

  // In one batch: the repeat resolves to the first item's seq, one row, one push.
  Calls calls;
  std::vector<BatchItem> items;
  for (const char* cmid : {"p", "q", "p", "same"}) {
    items.push_back(BatchItem{
        &calls.Add(a, codec::msg::kSend, Send("to", b, cmid, "batch")), {}, Code::kOk, {}});
  }
  service_->HandleBatch(items);
  auto seq_of = [&](size_t i) {
    codec::Body body;
    std::string error;
    EXPECT_TRUE(codec::Body::Parse(items[i].reply.body, &body, &error));
    return *body.GetUint("seq");
  };
  EXPECT_EQ(seq_of(0), 4u);
  EXPECT_EQ(seq_of(1), 5u);
  EXPECT_EQ(seq_of(2), 4u);
  EXPECT_EQ(seq_of(3), 1u);
  EXPECT_TRUE(items[2].reply.pushes.empty());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM messages"), 5);
  EXPECT_EQ(HistorySeqs(a, DirectConv(a, b)), (std::vector<uint64_t>{5, 4, 3, 2, 1}));
}

TEST_F(MsgServiceTest, AckSyncHistoryConversations) {
  const uint64_t a = AddUser("alice"), b = AddUser("bob"), c = AddUser("carol");
  const uint64_t g = AddGroup({a, b});
  for (int i = 0; i < 5; ++i)
    Call(a, codec::msg::kSend, Send("to", b, "d" + std::to_string(i), "x"));
  for (int i = 0; i < 3; ++i)
    Call(a, codec::msg::kSend, Send("gid", g, "g" + std::to_string(i), "y"));
  const std::string dconv = DirectConv(a, b), gconv = GroupConv(g);

  codec::MapWriter lim(1);
  lim.Key("limit").Uint(6);
  Outcome s = Call(b, codec::msg::kSync, lim.Finish());
  ASSERT_EQ(s.code, Code::kOk) << s.error;
  EXPECT_EQ(s.body.Find("messages")->via.array.size, 6u);
  EXPECT_TRUE(*s.body.GetBool("more"));

  auto ack = [&](uint64_t uid, const std::string& conv, uint64_t seq) {
    codec::MapWriter w(2);
    w.Key("conv").Str(conv).Key("seq").Uint(seq);
    return Call(uid, codec::msg::kAck, w.Finish()).code;
  };
  EXPECT_EQ(ack(b, dconv, 5), Code::kOk);
  EXPECT_EQ(ack(b, dconv, 2), Code::kOk);  // never goes down
  EXPECT_EQ(ack(b, dconv, 6), Code::kBadRequest);
  EXPECT_EQ(ack(c, dconv, 1), Code::kNotFound);  // someone else's: not c's to find
  EXPECT_EQ(ack(c, gconv, 1), Code::kForbidden);
  EXPECT_EQ(ack(b, "g:999999", 1), Code::kNotFound);
  EXPECT_EQ(ack(b, "nonsense", 1), Code::kBadRequest);
  s = Call(b, codec::msg::kSync, codec::EmptyBody());
  EXPECT_EQ(s.body.Find("messages")->via.array.size, 3u);  // the group's
  EXPECT_FALSE(*s.body.GetBool("more"));
  EXPECT_EQ(ack(b, gconv, 3), Code::kOk);
  EXPECT_EQ(Call(b, codec::msg::kSync, codec::EmptyBody()).body.Find("messages")->via.array.size,
            0u);

  Outcome convs = Call(b, codec::msg::kConversations, codec::EmptyBody());
  ASSERT_EQ(convs.code, Code::kOk);
  EXPECT_EQ(convs.body.Find("convs")->via.array.size, 2u);
  EXPECT_EQ(
      Call(c, codec::msg::kConversations, codec::EmptyBody()).body.Find("convs")->via.array.size,
      0u);

  codec::MapWriter h(3);
  h.Key("conv").Str(dconv).Key("before").Uint(4).Key("limit").Uint(2);
  Outcome hist = Call(a, codec::msg::kHistory, h.Finish());
  ASSERT_EQ(hist.code, Code::kOk);
  EXPECT_EQ(hist.body.Find("messages")->via.array.size, 2u);  // 3, 2
  codec::MapWriter hc(1);
  hc.Key("conv").Str(dconv);
  EXPECT_EQ(Call(c, codec::msg::kHistory, hc.Finish()).code, Code::kNotFound);
  codec::MapWriter hl(2);
  hl.Key("conv").Str(dconv).Key("limit").Uint(101);
  EXPECT_EQ(Call(a, codec::msg::kHistory, hl.Finish()).code, Code::kBadRequest);
}

// A database from before migration 9 (direct conversations listed in user_convs,
// read positions in acks) is upgraded in place: every member keeps their
// conversations and read positions in SYNC and CONVERSATIONS, a conversation
// continues at its next seq, and user_convs is gone.
TEST_F(MsgServiceTest, Migration9KeepsTheConversationsOfAnOlderDatabase) {
  config_ = TestDbConfig(imbus::testing::NewDatabaseName("msg9"));
  db_ = std::make_unique<Db>(config_);
  db_->Connect(/*select_database=*/false);
  db_->Exec("CREATE DATABASE " + QuoteDatabaseName(config_.database));
  db_->Disconnect();
  db_->Connect(/*select_database=*/true);
  imbus::testing::ApplyMigrationsUpTo(db_.get(), 8);
  const uint64_t a = AddUser("old_a"), b = AddUser("old_b"), c = AddUser("old_c");
  const uint64_t g = AddGroup({a, c});
  const std::string ab = DirectConv(a, b), ac = DirectConv(a, c);
  // a:b has 3 messages (b read 2 of them), a:c one that c never read; a read the
  // group's only message.
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    db_->Query(
        "INSERT INTO messages (conv, seq, sender, cmid, ts, text) VALUES (?, ?, ?, ?, 1, 'x')",
        {std::string_view(ab), seq, a, std::string_view("ab" + std::to_string(seq))});
  }
  db_->Query(
      "INSERT INTO messages (conv, seq, sender, cmid, ts, text) VALUES (?, 1, ?, 'ac', 1, 'y')",
      {std::string_view(ac), a});
  db_->Query(
      "INSERT INTO messages (conv, seq, sender, cmid, ts, gid, text) VALUES (?, 1, ?, 'g', 1, ?, "
      "'z')",
      {std::string_view(GroupConv(g)), c, g});
  for (const auto& [uid, conv] :
       std::vector<std::pair<uint64_t, std::string>>{{a, ab}, {b, ab}, {a, ac}, {c, ac}}) {
    db_->Query("INSERT INTO user_convs (uid, conv) VALUES (?, ?)", {uid, std::string_view(conv)});
  }
  db_->Query(
      "INSERT INTO acks (uid, conv, acked_seq) VALUES (?, ?, 3), (?, ?, 2), (?, ?, 1), (?, ?, 1)",
      {a, std::string_view(ab), b, std::string_view(ab), a, std::string_view(ac), a,
       std::string_view(GroupConv(g))});

  EXPECT_EQ(ApplySchema(db_.get()), Migrations().back().version);
  EXPECT_TRUE(db_->Query("SHOW TABLES LIKE 'user_convs'").rows.empty());
  service_ = std::make_unique<MsgService>(db_.get(), MsgService::Options{});
  // (conv, last_seq, acked_seq) of each of uid's conversations, in id order.
  auto convs = [&](uint64_t uid) {
    Outcome o = Call(uid, codec::msg::kConversations, codec::EmptyBody());
    EXPECT_EQ(o.code, Code::kOk) << o.error;
    std::vector<std::tuple<std::string, uint64_t, uint64_t>> out;
    const msgpack::object* list = o.body.Find("convs");
    for (uint32_t i = 0; list != nullptr && i < list->via.array.size; ++i) {
      std::string conv;
      uint64_t last = 0, acked = 0;
      const msgpack::object& m = list->via.array.ptr[i];
      for (uint32_t k = 0; k < m.via.map.size; ++k) {
        const std::string_view key(m.via.map.ptr[k].key.via.str.ptr,
                                   m.via.map.ptr[k].key.via.str.size);
        const msgpack::object& v = m.via.map.ptr[k].val;
        if (key == "conv") conv.assign(v.via.str.ptr, v.via.str.size);
        if (key == "last_seq") last = v.via.u64;
        if (key == "acked_seq") acked = v.via.u64;
      }
      out.emplace_back(conv, last, acked);
    }
    return out;
  };
  using Row = std::tuple<std::string, uint64_t, uint64_t>;
  EXPECT_EQ(convs(a), (std::vector<Row>{{ab, 3, 3}, {ac, 1, 1}, {GroupConv(g), 1, 1}}));
  EXPECT_EQ(convs(b), (std::vector<Row>{{ab, 3, 2}}));
  EXPECT_EQ(convs(c), (std::vector<Row>{{ac, 1, 0}, {GroupConv(g), 1, 0}}));
  Outcome sync = Call(b, codec::msg::kSync, codec::EmptyBody());
  ASSERT_EQ(sync.code, Code::kOk) << sync.error;
  EXPECT_EQ(sync.body.Find("messages")->via.array.size, 1u);  // a:b seq 3
  Outcome next = Call(b, codec::msg::kSend, Send("to", a, "after", "new"));
  ASSERT_EQ(next.code, Code::kOk) << next.error;
  EXPECT_EQ(*next.body.GetUint("seq"), 4u);
  EXPECT_EQ(convs(b), (std::vector<Row>{{ab, 4, 4}}));
}

// Sending counts as reading: the sender's acked position follows their own messages
// (never down), so their own messages are neither unread in CONVERSATIONS nor handed
// back by SYNC; one extra statement per batch, in the same transaction.
TEST_F(MsgServiceTest, SendingAdvancesTheSendersAckedSeq) {
  const uint64_t a = AddUser("reader_a"), b = AddUser("reader_b");
  const uint64_t g = AddGroup({a, b});
  const std::string dconv = DirectConv(a, b), gconv = GroupConv(g);
  auto acked = [&](uint64_t uid, const std::string& conv) -> int64_t {
    Outcome o = Call(uid, codec::msg::kConversations, codec::EmptyBody());
    EXPECT_EQ(o.code, Code::kOk) << o.error;
    const msgpack::object* convs = o.body.Find("convs");
    for (uint32_t i = 0; convs != nullptr && i < convs->via.array.size; ++i) {
      const msgpack::object& c = convs->via.array.ptr[i];
      std::string name;
      int64_t seq = -1;
      for (uint32_t k = 0; k < c.via.map.size; ++k) {
        const std::string key = c.via.map.ptr[k].key.as<std::string>();
        if (key == "conv") name = c.via.map.ptr[k].val.as<std::string>();
        if (key == "acked_seq") seq = c.via.map.ptr[k].val.as<int64_t>();
      }
      if (name == conv) return seq;
    }
    return -1;  // not listed
  };
  auto synced = [&](uint64_t uid) {
    return Call(uid, codec::msg::kSync, codec::EmptyBody()).body.Find("messages")->via.array.size;
  };

  ASSERT_EQ(Call(a, codec::msg::kSend, Send("to", b, "r1", "one")).code, Code::kOk);
  ASSERT_EQ(Call(a, codec::msg::kSend, Send("to", b, "r2", "two")).code, Code::kOk);
  ASSERT_EQ(Call(a, codec::msg::kSend, Send("gid", g, "r3", "group")).code, Code::kOk);
  EXPECT_EQ(acked(a, dconv), 2);
  EXPECT_EQ(acked(a, gconv), 1);
  EXPECT_EQ(acked(b, dconv), 0);  // the recipient has read nothing
  EXPECT_EQ(synced(a), 0u);       // nothing of a's own comes back
  EXPECT_EQ(synced(b), 3u);

  // A reply marks what came before it as read too.
  ASSERT_EQ(Call(b, codec::msg::kSend, Send("to", a, "s1", "three")).code, Code::kOk);
  EXPECT_EQ(acked(b, dconv), 3);
  EXPECT_EQ(acked(a, dconv), 2);

  // Never backwards: after an ACK past it, a resend of seq 1 (dedup) leaves it.
  codec::MapWriter w(2);
  w.Key("conv").Str(dconv).Key("seq").Uint(3);
  ASSERT_EQ(Call(a, codec::msg::kAck, w.Finish()).code, Code::kOk);
  Outcome again = Call(a, codec::msg::kSend, Send("to", b, "r1", "one"));
  ASSERT_EQ(again.code, Code::kOk);
  EXPECT_EQ(again.body.GetUint("seq"), 1u);
  EXPECT_EQ(acked(a, dconv), 3);

  // A batch of several messages into one conversation: the newest counts.
  Calls calls;
  std::vector<BatchItem> items;
  for (int i = 0; i < 4; ++i) {
    items.push_back(BatchItem{
        &calls.Add(b, codec::msg::kSend, Send("gid", g, "batch" + std::to_string(i), "x")),
        Reply{},
        Code::kOk,
        {}});
  }
  service_->HandleBatch(items);
  for (const BatchItem& item : items) EXPECT_EQ(item.code, Code::kOk) << item.error;
  EXPECT_EQ(acked(b, gconv), 5);
}

// HISTORY and ACK of a conversation that cannot exist: NOT_FOUND, not an empty OK.
TEST_F(MsgServiceTest, ConversationsThatCannotExistAreNotFound) {
  const uint64_t a = AddUser("exists_a"), b = AddUser("exists_b");
  const uint64_t ghost = b + 1000;  // no such user
  auto history = [&](const std::string& conv) {
    codec::MapWriter w(1);
    w.Key("conv").Str(conv);
    return Call(a, codec::msg::kHistory, w.Finish()).code;
  };
  auto ack = [&](const std::string& conv, uint64_t seq) {
    codec::MapWriter w(2);
    w.Key("conv").Str(conv).Key("seq").Uint(seq);
    return Call(a, codec::msg::kAck, w.Finish()).code;
  };
  EXPECT_EQ(history(DirectConv(a, ghost)), Code::kNotFound);
  EXPECT_EQ(history("d:" + std::to_string(a) + ":18446744073709551615"), Code::kNotFound);
  EXPECT_EQ(ack(DirectConv(a, ghost), 0), Code::kNotFound);
  EXPECT_EQ(ack(DirectConv(a, ghost), 1), Code::kNotFound);
  EXPECT_EQ(history("g:999999"), Code::kNotFound);
  // Existing users with no messages yet, and oneself: an empty OK.
  EXPECT_EQ(history(DirectConv(a, b)), Code::kOk);
  EXPECT_EQ(history(DirectConv(a, a)), Code::kOk);
  EXPECT_EQ(ack(DirectConv(a, b), 0), Code::kOk);
  // A deleted user: NOT_FOUND until there are messages, which stay readable.
  db_->Query("UPDATE users SET deleted_at = NOW(3), name = NULL WHERE uid = ?", {b});
  EXPECT_EQ(history(DirectConv(a, b)), Code::kNotFound);
  const uint64_t c = AddUser("exists_c");
  ASSERT_EQ(Call(a, codec::msg::kSend, Send("to", c, "h1", "hi")).code, Code::kOk);
  db_->Query("UPDATE users SET deleted_at = NOW(3), name = NULL WHERE uid = ?", {c});
  EXPECT_EQ(history(DirectConv(a, c)), Code::kOk);
  EXPECT_EQ(HistorySeqs(a, DirectConv(a, c)).size(), 1u);
  // An empty page of an existing conversation (before the first message) is fine.
  codec::MapWriter w(2);
  w.Key("conv").Str(DirectConv(a, c)).Key("before").Uint(1);
  EXPECT_EQ(Call(a, codec::msg::kHistory, w.Finish()).code, Code::kOk);
}

// Found by the slow-reader drill: 200 messages of 8 KiB made a SYNC reply of 1.6 MB,
// which no client accepts (max_frame 65,536), so a user who missed big messages
// could never catch up. Replies are cut to fit; `more` (or the next page) has the rest.
TEST_F(MsgServiceTest, SyncAndHistoryRepliesFitInOneFrame) {
  const uint64_t a = AddUser("big_a"), b = AddUser("big_b");
  constexpr int kCount = 20;
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(Call(a, codec::msg::kSend,
                   Send("to", b, "big" + std::to_string(i), std::string(kMaxText, 'x')))
                  .code,
              Code::kOk);
  }
  const std::string conv = DirectConv(a, b);
  codec::MapWriter lim(1);
  lim.Key("limit").Uint(kMaxSyncLimit);
  uint64_t synced = 0;
  for (int round = 0; round < kCount; ++round) {
    Outcome s = Call(b, codec::msg::kSync, lim.Finish());
    ASSERT_EQ(s.code, Code::kOk) << s.error;
    EXPECT_LE(s.body_bytes + codec::kHeaderSize, codec::kDefaultMaxFrame);
    const auto& arr = s.body.Find("messages")->via.array;
    ASSERT_GT(arr.size, 0u);
    synced += arr.size;
    codec::MapWriter ack(2);
    ack.Key("conv").Str(conv).Key("seq").Uint(synced);
    ASSERT_EQ(Call(b, codec::msg::kAck, ack.Finish()).code, Code::kOk);
    if (!*s.body.GetBool("more")) break;
  }
  EXPECT_EQ(synced, static_cast<uint64_t>(kCount));
  codec::MapWriter h(2);
  h.Key("conv").Str(conv).Key("limit").Uint(kMaxHistoryLimit);
  Outcome hist = Call(a, codec::msg::kHistory, h.Finish());
  ASSERT_EQ(hist.code, Code::kOk);
  EXPECT_LE(hist.body_bytes + codec::kHeaderSize, codec::kDefaultMaxFrame);
  EXPECT_GT(hist.body.Find("messages")->via.array.size, 0u);
  EXPECT_LT(hist.body.Find("messages")->via.array.size, static_cast<uint32_t>(kCount));
}

// Several workers (threads, each with its own connection and service, as in
// imbus-actor --threads N) send batches into one group and into crossing direct
// conversations at once: every conversation ends gap-free and nothing is lost.
TEST_F(MsgServiceTest, ConcurrentWorkersKeepSeqsGapFree) {
  std::vector<uint64_t> users;
  for (int i = 0; i < 4; ++i) users.push_back(AddUser("u" + std::to_string(i)));
  const uint64_t g = AddGroup(users);
  constexpr int kWorkers = 4, kBatches = 25, kPerBatch = 8;
  const int failures = RunWorkers(kWorkers, kBatches, [&](int w, int b, Calls& calls) {
    std::vector<BatchItem> items;
    for (int k = 0; k < kPerBatch; ++k) {
      const uint64_t from = users[static_cast<size_t>(w)];
      const std::string cmid = std::to_string(b) + "." + std::to_string(k);
      const std::string body =
          k % 2 == 0 ? Send("gid", g, cmid, "group")
                     : Send("to", users[static_cast<size_t>((w + k) % kWorkers)], cmid, "direct");
      items.push_back(BatchItem{&calls.Add(from, codec::msg::kSend, body), {}, Code::kOk, {}});
    }
    return items;
  });
  ASSERT_EQ(failures, 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM messages"), kWorkers * kBatches * kPerBatch);
  // Gap-free: in every conversation the seqs are exactly 1..last_seq.
  DbResult r =
      db_->Query("SELECT conv, COUNT(seq), MIN(seq), MAX(seq) FROM messages GROUP BY conv");
  ASSERT_FALSE(r.rows.empty());
  for (const DbRow& row : r.rows) {
    EXPECT_EQ(row.Uint(2), 1u) << *row.Str(0);
    EXPECT_EQ(row.Uint(3), row.Uint(1)) << *row.Str(0);
  }
  std::vector<uint64_t> seqs = HistorySeqs(users[0], GroupConv(g));
  EXPECT_EQ(seqs.size(), 100u);  // the newest 100 of 400, newest first
  EXPECT_EQ(seqs.front(), 400u);
  // ts never goes down along a conversation's seqs (SYNC orders by ts).
  EXPECT_EQ(Count("SELECT COUNT(*) FROM messages a JOIN messages b"
                  " ON a.conv = b.conv AND b.seq = a.seq + 1 WHERE b.ts < a.ts"),
            0);
}

// Two workers writing the same conversations at once in full batches (the broker
// hands a conversation to a second worker when its owner holds too much): the
// owner numbers from its cached tails, the other reads them, and their batches
// collide again and again. Every message must still
// be stored once, gap-free, and no batch may fail for its neighbours' collisions.
TEST_F(MsgServiceTest, TwoWorkersOnTheSameConversationsInFullBatchesFailNothing) {
  std::vector<uint64_t> users;
  for (int i = 0; i < 64; ++i) users.push_back(AddUser("hot" + std::to_string(i)));
  std::vector<std::pair<uint64_t, uint64_t>> pairs;  // 2,016 conversations
  for (size_t i = 0; i < users.size(); ++i) {
    for (size_t j = i + 1; j < users.size(); ++j) pairs.emplace_back(users[i], users[j]);
  }
  constexpr int kWorkers = 2, kBatches = 60, kPerBatch = 240;
  std::vector<std::minstd_rand> rngs{std::minstd_rand(1), std::minstd_rand(2)};
  const int failures = RunWorkers(kWorkers, kBatches, [&](int w, int b, Calls& calls) {
    std::minstd_rand& rng = rngs[static_cast<size_t>(w)];
    std::vector<BatchItem> items;
    for (int k = 0; k < kPerBatch; ++k) {
      // Each batch: 240 of the conversations, so two batches share some.
      const auto& [x, y] = pairs[rng() % pairs.size()];
      const bool flip = rng() % 2 == 1;
      const std::string cmid =
          std::to_string(w) + "." + std::to_string(b) + "." + std::to_string(k);
      items.push_back(BatchItem{
          &calls.Add(flip ? y : x, codec::msg::kSend, Send("to", flip ? x : y, cmid, "hot"),
                     /*owner=*/w == 0),
          {},
          Code::kOk,
          {}});
    }
    return items;
  });
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM messages"), kWorkers * kBatches * kPerBatch);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM (SELECT conv FROM messages GROUP BY conv"
                  " HAVING MIN(seq) <> 1 OR MAX(seq) <> COUNT(*)) gaps"),
            0);
}

}  // namespace
}  // namespace imbus::actors::msg
