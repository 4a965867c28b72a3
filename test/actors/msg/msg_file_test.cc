// Issue 19, the MSG side of files (docs/protocol.md 6.9 "Files in messages"): SEND
// with `file` on a real MariaDB, called directly. Who may send which file, the
// messages.file_id and file_grants rows, the file object in the reply's push, SYNC,
// HISTORY and UPDATED, recall and edit, resends, bad input, and that messages without
// a file cost no statement more. The files rows are written here as the FILE service
// writes them after UPLOAD_FINISH.
#include <gtest/gtest.h>

#include <deque>
#include <set>

#include "actors/db/schema.h"
#include "actors/msg/msg_service.h"
#include "codec/commands.h"
#include "codec/message.h"
#include "test/support/actors_db_config.h"
#include "test/support/mariadb.h"

namespace imbus::actors::msg {
namespace {

using codec::Code;

struct Outcome {
  Code code = Code::kOk;
  std::string error;
  codec::Body body;
  std::vector<Push> pushes;
};

// A SEND body: `to` or `gid`, cmid, and text / file when given (nullopt: left out).
std::string SendBody(const char* key, uint64_t id, const std::string& cmid,
                     const std::optional<std::string>& text,
                     const std::optional<std::string>& file) {
  codec::MapWriter w(2 + (text ? 1 : 0) + (file ? 1 : 0));
  w.Key(key).Uint(id).Key("cmid").Str(cmid);
  if (text) w.Key("text").Str(*text);
  if (file) w.Key("file").Str(*file);
  return w.Finish();
}

codec::Message MessageOf(const std::string& body) {
  codec::Body b;
  std::string error;
  EXPECT_TRUE(codec::Body::Parse(body, &b, &error)) << error;
  return codec::MessageIn(b.root());
}

class MsgFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<Db>(
        imbus::testing::ActorsDbConfig(imbus::testing::NewDatabaseName("msgfile")));
    PrepareDatabase(db_.get());
    service_ = std::make_unique<MsgService>(db_.get(), MsgService::Options{});
  }

  uint64_t AddUser(const std::string& name) {
    return db_->Query("INSERT INTO users (name, pwhash) VALUES (?, 'x')", {std::string_view(name)})
        .insert_id;
  }
  uint64_t AddGroup(const std::vector<uint64_t>& members) {
    const uint64_t gid =
        db_->Query("INSERT INTO chat_groups (name, owner_uid) VALUES ('g', ?)", {members.at(0)})
            .insert_id;
    for (uint64_t uid : members) {
      db_->Query("INSERT INTO group_members (gid, uid, role) VALUES (?, ?, 'member')", {gid, uid});
    }
    return gid;
  }
  // A finished upload, as the FILE service leaves it.
  std::string AddFile(uint64_t uploader, const std::string& name, uint32_t width = 0,
                      uint32_t height = 0) {
    const std::string id = "f" + std::to_string(++files_) + "0123456789abcdef";
    const std::string sha(32, static_cast<char>('A' + files_));
    if (width != 0) {
      db_->Query(
          "INSERT INTO files (file_id, uploader, name, size, mime, sha256, width, height,"
          " created_ms) VALUES (?, ?, ?, 1234, 'image/png', ?, ?, ?, 777)",
          {std::string_view(id), uploader, std::string_view(name), std::string_view(sha),
           uint64_t{width}, uint64_t{height}});
    } else {
      db_->Query(
          "INSERT INTO files (file_id, uploader, name, size, mime, sha256, created_ms)"
          " VALUES (?, ?, ?, 99, 'application/pdf', ?, 777)",
          {std::string_view(id), uploader, std::string_view(name), std::string_view(sha)});
    }
    return id;
  }
  int64_t Count(const std::string& sql) { return db_->Query(sql).rows.at(0).Int(0).value_or(-1); }
  // Statements this connection sent so far (the service runs on the same one).
  int64_t Questions() {
    return std::stoll(
        db_->Query("SHOW SESSION STATUS LIKE 'Questions'").rows.at(0).Str(1).value_or("-1"));
  }

  Outcome Call(uint64_t uid, uint16_t command, const std::string& body) {
    codec::RequestMeta& meta = metas_.emplace_back();
    meta.rid = metas_.size();
    meta.uid = uid;
    meta.service = codec::ToWire(codec::Service::kMsg);
    meta.command = command;
    codec::Body& b = bodies_.emplace_back();
    std::string error;
    EXPECT_TRUE(codec::Body::Parse(body, &b, &error)) << error;
    Request req{meta, b};
    Reply reply;
    Outcome out;
    try {
      service_->Handle(req, &reply);
    } catch (const RequestError& e) {
      out.code = e.code();
      out.error = e.what();
      return out;
    } catch (const codec::BadField& e) {  // the host's answer to it
      out.code = Code::kBadRequest;
      out.error = e.what();
      return out;
    }
    EXPECT_TRUE(codec::Body::Parse(reply.body, &out.body, &error)) << error;
    out.pushes = std::move(reply.pushes);
    return out;
  }
  Outcome Send(uint64_t from, const char* key, uint64_t id, const std::string& cmid,
               const std::optional<std::string>& text, const std::optional<std::string>& file) {
    return Call(from, codec::msg::kSend, SendBody(key, id, cmid, text, file));
  }
  std::vector<codec::Message> Listed(const Outcome& o) {
    std::vector<codec::Message> out;
    const msgpack::object* a = o.body.Find("messages");
    for (uint32_t i = 0; a != nullptr && i < a->via.array.size; ++i) {
      out.push_back(codec::MessageIn(a->via.array.ptr[i]));
    }
    return out;
  }
  std::vector<codec::Message> History(uint64_t uid, const std::string& conv) {
    codec::MapWriter w(1);
    w.Key("conv").Str(conv);
    Outcome o = Call(uid, codec::msg::kHistory, w.Finish());
    EXPECT_EQ(o.code, Code::kOk) << o.error;
    return Listed(o);
  }
  // Whether `uid` may see `file` by the rule of 6.9 (the query SEND checks with).
  bool Visible(uint64_t uid, const std::string& file) {
    MsgStore store(db_.get());
    return store.VisibleFiles(uid, {file}).count(file) == 1;
  }

  std::unique_ptr<Db> db_;
  std::unique_ptr<MsgService> service_;
  std::deque<codec::RequestMeta> metas_;
  std::deque<codec::Body> bodies_;
  int files_ = 0;
};

TEST_F(MsgFileTest, ADirectFileMessageCarriesTheFileObjectAndGrantsTheConversation) {
  const uint64_t a = AddUser("fa"), b = AddUser("fb"), c = AddUser("fc");
  const std::string f = AddFile(a, "photo.png", 640, 480);
  EXPECT_TRUE(Visible(a, f));  // the uploader
  EXPECT_FALSE(Visible(b, f));
  Outcome o = Send(a, "to", b, "m1", std::nullopt, f);  // no text
  ASSERT_EQ(o.code, Code::kOk) << o.error;
  ASSERT_EQ(o.pushes.size(), 1u);
  const codec::Message pushed = MessageOf(o.pushes[0].body);
  EXPECT_EQ(pushed.text, "[file] photo.png");
  ASSERT_TRUE(pushed.file.has_value());
  EXPECT_EQ(pushed.file->file, f);
  EXPECT_EQ(pushed.file->name, "photo.png");
  EXPECT_EQ(pushed.file->size, 1234u);
  EXPECT_EQ(pushed.file->mime, "image/png");
  EXPECT_EQ(pushed.file->sha256, std::string(32, 'B'));
  EXPECT_EQ(pushed.file->from, a);
  EXPECT_EQ(pushed.file->ts, 777);
  EXPECT_EQ(pushed.file->width, 640u);
  EXPECT_EQ(pushed.file->height, 480u);
  // sha256 is bin on the wire.
  codec::Body raw;
  std::string error;
  ASSERT_TRUE(codec::Body::Parse(o.pushes[0].body, &raw, &error));
  const msgpack::object* sha = codec::FieldIn(*raw.Find("file"), "sha256");
  ASSERT_NE(sha, nullptr);
  EXPECT_EQ(sha->type, msgpack::type::BIN);

  const std::string conv = DirectConv(a, b);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM messages WHERE file_id = '" + f + "'"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM file_grants WHERE file_id = '" + f + "' AND conv = '" +
                  conv + "'"),
            1);
  EXPECT_TRUE(Visible(b, f));   // a participant of the conversation now
  EXPECT_FALSE(Visible(c, f));  // not in it

  // SYNC and HISTORY carry it; a message without a file has no `file`.
  ASSERT_EQ(Send(a, "to", b, "m2", "plain", std::nullopt).code, Code::kOk);
  Outcome s = Call(b, codec::msg::kSync, codec::EmptyBody());
  ASSERT_EQ(s.code, Code::kOk) << s.error;
  std::vector<codec::Message> synced = Listed(s);
  ASSERT_EQ(synced.size(), 2u);
  ASSERT_TRUE(synced[0].file.has_value());
  EXPECT_EQ(synced[0].file->name, "photo.png");
  EXPECT_EQ(synced[0].file->width, 640u);
  EXPECT_FALSE(synced[1].file.has_value());
  std::vector<codec::Message> hist = History(a, conv);
  ASSERT_EQ(hist.size(), 2u);
  EXPECT_FALSE(hist[0].file.has_value());
  ASSERT_TRUE(hist[1].file.has_value());
  EXPECT_EQ(hist[1].file->sha256, std::string(32, 'B'));

  // b may pass it on (b may see it); c then may see it too. With a text of its own.
  Outcome fwd = Send(b, "to", c, "m3", "look at this", f);
  ASSERT_EQ(fwd.code, Code::kOk) << fwd.error;
  EXPECT_EQ(MessageOf(fwd.pushes.at(0).body).text, "look at this");
  EXPECT_TRUE(Visible(c, f));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM file_grants WHERE file_id = '" + f + "'"), 2);

  // A resend of the same cmid answers the first message: its push carries the file.
  Outcome again = Send(a, "to", b, "m1", std::nullopt, f);
  ASSERT_EQ(again.code, Code::kOk) << again.error;
  EXPECT_EQ(*again.body.GetUint("seq"), 1u);
  ASSERT_EQ(again.pushes.size(), 1u);
  const codec::Message resent = MessageOf(again.pushes[0].body);
  ASSERT_TRUE(resent.file.has_value());
  EXPECT_EQ(resent.file->name, "photo.png");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM messages"), 3);
}

TEST_F(MsgFileTest, AGroupFileIsVisibleToItsMembersOnly) {
  const uint64_t a = AddUser("ga"), b = AddUser("gb"), d = AddUser("gd"), out = AddUser("go");
  const uint64_t gid = AddGroup({a, b, d});
  const std::string f = AddFile(a, "report.pdf");
  Outcome o = Send(a, "gid", gid, "g1", "the report", f);
  ASSERT_EQ(o.code, Code::kOk) << o.error;
  const codec::Message pushed = MessageOf(o.pushes.at(0).body);
  EXPECT_EQ(pushed.text, "the report");
  ASSERT_TRUE(pushed.file.has_value());
  EXPECT_EQ(pushed.file->mime, "application/pdf");
  EXPECT_EQ(pushed.file->width, 0u);  // not an image: no width/height on the wire
  EXPECT_EQ(Count("SELECT COUNT(*) FROM file_grants WHERE conv = '" + GroupConv(gid) + "'"), 1);
  EXPECT_TRUE(Visible(b, f));
  EXPECT_TRUE(Visible(d, f));
  EXPECT_FALSE(Visible(out, f));
  // Membership counts when asked: a member who left sees it no more.
  db_->Query("DELETE FROM group_members WHERE gid = ? AND uid = ?", {gid, d});
  EXPECT_FALSE(Visible(d, f));
  // The outsider cannot send it anywhere; a member can, into the group again.
  EXPECT_EQ(Send(out, "to", a, "x1", std::nullopt, f).code, Code::kNotFound);
  EXPECT_EQ(Send(b, "gid", gid, "g2", std::nullopt, f).code, Code::kOk);
  std::vector<codec::Message> hist = History(b, GroupConv(gid));
  ASSERT_EQ(hist.size(), 2u);
  for (const codec::Message& m : hist) {
    ASSERT_TRUE(m.file.has_value());
    EXPECT_EQ(m.file->file, f);
  }
  EXPECT_EQ(hist[0].text, "[file] report.pdf");
}

TEST_F(MsgFileTest, BadFileFieldsAreRefusedAndStoreNothing) {
  const uint64_t a = AddUser("ba"), b = AddUser("bb"), c = AddUser("bc");
  const std::string mine = AddFile(a, "mine.txt");
  const std::string theirs = AddFile(c, "theirs.txt");  // c's, never sent to a
  codec::MapWriter num(3);
  num.Key("to").Uint(b).Key("cmid").Str("n1").Key("file").Uint(5);
  EXPECT_EQ(Call(a, codec::msg::kSend, num.Finish()).code, Code::kBadRequest);
  EXPECT_EQ(Send(a, "to", b, "n2", std::nullopt, "").code, Code::kBadRequest);
  EXPECT_EQ(Send(a, "to", b, "n3", std::nullopt, std::string(65, 'a')).code, Code::kBadRequest);
  EXPECT_EQ(Send(a, "to", b, "n4", std::nullopt, "nosuchfile").code, Code::kNotFound);
  EXPECT_EQ(Send(a, "to", b, "n5", "with text", theirs).code, Code::kNotFound);
  EXPECT_EQ(Send(a, "to", b, "n6", std::nullopt, "\xff\xfe").code, Code::kNotFound);
  EXPECT_EQ(Send(a, "to", b, "n7", std::nullopt, std::nullopt).code, Code::kBadRequest);
  EXPECT_EQ(Send(a, "to", b, "n8", "", std::nullopt).code, Code::kBadRequest);
  EXPECT_EQ(Send(a, "to", b, "n9", std::string(8193, 'x'), mine).code, Code::kTooLarge);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM messages"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM file_grants"), 0);
  EXPECT_FALSE(Visible(b, mine));
  EXPECT_FALSE(Visible(a, theirs));

  // One batch: the bad item is answered alone, the others are stored.
  std::vector<BatchItem> items;
  std::deque<Request> reqs;
  auto add = [&](uint64_t from, const std::string& body) {
    codec::RequestMeta& meta = metas_.emplace_back();
    meta.uid = from;
    meta.service = codec::ToWire(codec::Service::kMsg);
    meta.command = codec::msg::kSend;
    codec::Body& parsed = bodies_.emplace_back();
    std::string error;
    EXPECT_TRUE(codec::Body::Parse(body, &parsed, &error));
    items.push_back(BatchItem{&reqs.emplace_back(Request{meta, parsed}), {}, Code::kOk, {}});
  };
  add(a, SendBody("to", b, "b1", "text only", std::nullopt));
  add(a, SendBody("to", b, "b2", std::nullopt, mine));
  add(a, SendBody("to", b, "b3", std::nullopt, theirs));
  add(c, SendBody("to", b, "b4", std::nullopt, theirs));
  service_->HandleBatch(items);
  EXPECT_EQ(items[0].code, Code::kOk) << items[0].error;
  EXPECT_EQ(items[1].code, Code::kOk) << items[1].error;
  EXPECT_EQ(items[2].code, Code::kNotFound);
  EXPECT_EQ(items[3].code, Code::kOk) << items[3].error;
  EXPECT_EQ(Count("SELECT COUNT(*) FROM messages"), 3);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM messages WHERE file_id IS NULL"), 1);
  EXPECT_TRUE(Visible(b, mine));
  EXPECT_TRUE(Visible(b, theirs));
}

TEST_F(MsgFileTest, RecallDropsTheFileAndEditKeepsIt) {
  const uint64_t a = AddUser("ra"), b = AddUser("rb");
  const std::string f = AddFile(a, "pic.gif", 10, 20);
  ASSERT_EQ(Send(a, "to", b, "r1", std::nullopt, f).code, Code::kOk);
  ASSERT_EQ(Send(a, "to", b, "r2", "caption", f).code, Code::kOk);
  const std::string conv = DirectConv(a, b);
  auto change = [&](uint16_t command, uint64_t seq, const char* text) {
    codec::MapWriter w(text != nullptr ? 3 : 2);
    w.Key("conv").Str(conv).Key("seq").Uint(seq);
    if (text != nullptr) w.Key("text").Str(text);
    return Call(a, command, w.Finish());
  };
  Outcome edited = change(codec::msg::kEdit, 2, "new caption");
  ASSERT_EQ(edited.code, Code::kOk) << edited.error;
  const codec::Message e = codec::MessageIn(*edited.body.Find("message"));
  EXPECT_EQ(e.text, "new caption");
  ASSERT_TRUE(e.file.has_value());
  EXPECT_EQ(e.file->name, "pic.gif");
  ASSERT_TRUE(MessageOf(edited.pushes.at(0).body).file.has_value());  // UPDATED

  Outcome recalled = change(codec::msg::kRecall, 1, nullptr);
  ASSERT_EQ(recalled.code, Code::kOk) << recalled.error;
  const codec::Message r = codec::MessageIn(*recalled.body.Find("message"));
  EXPECT_TRUE(r.recalled);
  EXPECT_EQ(r.text, "");
  EXPECT_FALSE(r.file.has_value());
  EXPECT_FALSE(MessageOf(recalled.pushes.at(0).body).file.has_value());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM messages WHERE file_id IS NULL"), 1);
  std::vector<codec::Message> hist = History(b, conv);
  ASSERT_EQ(hist.size(), 2u);
  EXPECT_TRUE(hist[0].file.has_value());
  EXPECT_FALSE(hist[1].file.has_value());
  // The grant stays: the file was sent there, and message 2 still carries it.
  EXPECT_TRUE(Visible(b, f));
}

// The chat benchmark's path: a SEND without a file runs no statement for files
// (a file SEND costs exactly two more: the visibility check and the grant), and a
// SYNC page without file messages one statement (with them: one more per page).
TEST_F(MsgFileTest, MessagesWithoutFilesCostNoStatementMore) {
  const uint64_t a = AddUser("ca"), b = AddUser("cb");
  const std::string f = AddFile(a, "x.bin");
  // The first run of each statement shape also prepares it: run both kinds once.
  ASSERT_EQ(Send(a, "to", b, "warm1", "first", std::nullopt).code, Code::kOk);
  ASSERT_EQ(Send(a, "to", b, "warm2", std::nullopt, f).code, Code::kOk);
  auto cost = [&](const std::function<void()>& run) {
    const int64_t before = Questions();
    run();
    return Questions() - before - 1;  // the SHOW itself
  };
  const int64_t text_send =
      cost([&] { ASSERT_EQ(Send(a, "to", b, "t1", "hi", std::nullopt).code, Code::kOk); });
  const int64_t file_send =
      cost([&] { ASSERT_EQ(Send(a, "to", b, "t2", std::nullopt, f).code, Code::kOk); });
  EXPECT_EQ(file_send, text_send + 2);

  const uint64_t c = AddUser("cc"), d = AddUser("cd");
  ASSERT_EQ(Send(a, "to", c, "t3", "plain", std::nullopt).code, Code::kOk);
  ASSERT_EQ(Send(a, "to", d, "t4", std::nullopt, f).code, Code::kOk);
  auto sync = [&](uint64_t uid) {
    std::vector<codec::Message> got = Listed(Call(uid, codec::msg::kSync, codec::EmptyBody()));
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].file.has_value(), uid == d);
  };
  sync(c);
  sync(d);
  const int64_t plain_sync = cost([&] { sync(c); });
  const int64_t file_sync = cost([&] { sync(d); });
  EXPECT_EQ(plain_sync, 1);
  EXPECT_EQ(file_sync, 2);
}

}  // namespace
}  // namespace imbus::actors::msg
