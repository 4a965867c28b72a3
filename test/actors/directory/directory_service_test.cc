// DirectoryService logic on both stores (memory, and MariaDB on the private test
// server), plus the block-indexed user paging of MariaDbDirectoryStore against a
// plain OFFSET query.
#include "actors/directory/directory_service.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include "actors/db/schema.h"
#include "actors/directory/mariadb_directory_store.h"
#include "actors/directory/memory_directory_store.h"
#include "codec/commands.h"
#include "test/support/actors_db_config.h"
#include "test/actors/service_call.h"
#include "test/support/mariadb.h"

namespace imbus::actors::testing {
namespace {

using codec::Code;
namespace dir = codec::directory;

// A store plus the way to make users in it (auth owns users in production).
class Harness {
 public:
  virtual ~Harness() = default;
  virtual std::unique_ptr<DirectoryStore> MakeStore() = 0;
  virtual uint64_t AddUser(const std::string& name) = 0;
  virtual void DeleteUser(uint64_t uid) = 0;
};

class MemoryHarness : public Harness {
 public:
  std::unique_ptr<DirectoryStore> MakeStore() override {
    auto s = std::make_unique<MemoryDirectoryStore>();
    store_ = s.get();
    return s;
  }
  uint64_t AddUser(const std::string& name) override { return store_->AddUser(name); }
  void DeleteUser(uint64_t uid) override { store_->DeleteUser(uid); }

 private:
  MemoryDirectoryStore* store_ = nullptr;
};

DbConfig TestDbConfig(const std::string& prefix) {
  return imbus::testing::ActorsDbConfig(imbus::testing::NewDatabaseName(prefix));
}

class MariaDbHarness : public Harness {
 public:
  std::unique_ptr<DirectoryStore> MakeStore() override {
    db_ = std::make_unique<Db>(TestDbConfig("dir"));
    PrepareDatabase(db_.get());
    return std::make_unique<MariaDbDirectoryStore>(db_.get());
  }
  uint64_t AddUser(const std::string& name) override {
    return db_->Query("INSERT INTO users (name, pwhash) VALUES (?, 'x')", {std::string_view(name)})
        .insert_id;
  }
  void DeleteUser(uint64_t uid) override {
    db_->Query(
        "UPDATE users SET deleted_name = name, name = NULL, deleted_at = CURRENT_TIMESTAMP(3)"
        " WHERE uid = ?",
        {uid});
  }
  Db* db() { return db_.get(); }

 private:
  std::unique_ptr<Db> db_;
};

struct HarnessFactory {
  std::string name;
  std::function<std::unique_ptr<Harness>()> make;
};

class DirectoryTest : public ::testing::TestWithParam<HarnessFactory> {
 protected:
  void SetUp() override {
    harness_ = GetParam().make();
    service_ = std::make_unique<DirectoryService>(harness_->MakeStore(), &sessions_);
  }
  CallResult Call(uint64_t uid, uint16_t command, const std::string& body = codec::EmptyBody()) {
    return CallService(*service_, codec::ToWire(codec::Service::kDirectory), command, uid, body);
  }
  static std::string Page(uint64_t page, uint64_t size) {
    codec::MapWriter w(2);
    w.Key("page").Uint(page);
    w.Key("size").Uint(size);
    return w.Finish();
  }
  // uids of an array-of-maps field.
  static std::vector<uint64_t> Uids(const codec::Body& b, const char* key) {
    std::vector<uint64_t> out;
    const msgpack::object* a = b.Find(key);
    if (a == nullptr) return out;
    for (uint32_t i = 0; i < a->via.array.size; ++i) {
      const msgpack::object& m = a->via.array.ptr[i];
      for (uint32_t k = 0; k < m.via.map.size; ++k) {
        const auto& kv = m.via.map.ptr[k];
        if (kv.key.as<std::string>() == "uid") out.push_back(kv.val.as<uint64_t>());
      }
    }
    return out;
  }
  static std::string Field(const codec::Body& b, const char* key, size_t index, const char* field) {
    const msgpack::object& m = b.Find(key)->via.array.ptr[index];
    for (uint32_t k = 0; k < m.via.map.size; ++k) {
      const auto& kv = m.via.map.ptr[k];
      if (kv.key.as<std::string>() != field) continue;
      if (kv.val.type == msgpack::type::BOOLEAN) return kv.val.as<bool>() ? "true" : "false";
      if (kv.val.type == msgpack::type::STR) return kv.val.as<std::string>();
      return std::to_string(kv.val.as<uint64_t>());
    }
    return "<missing>";
  }

  MemorySessions sessions_;
  std::unique_ptr<Harness> harness_;
  std::unique_ptr<DirectoryService> service_;
};

TEST_P(DirectoryTest, LoginRequired) {
  EXPECT_EQ(Call(0, dir::kListFriends).code, Code::kUnauthenticated);
}

TEST_P(DirectoryTest, ListUsersPagesByUidWithOnlineFlags) {
  std::vector<uint64_t> uids;
  for (int i = 0; i < 5; ++i) uids.push_back(harness_->AddUser("user" + std::to_string(i)));
  harness_->DeleteUser(uids[1]);
  sessions_.Set(uids[2], {codec::SessionInfo{uids[2], "default", "user2", "1.2.3.4", 5, "", 0}});

  CallResult r = Call(uids[0], dir::kListUsers, Page(1, 2));
  ASSERT_EQ(r.code, Code::kOk) << r.error;
  EXPECT_EQ(r.body.GetUint("total"), 4u);
  EXPECT_EQ(r.body.GetUint("page"), 1u);
  EXPECT_EQ(Uids(r.body, "users"), (std::vector<uint64_t>{uids[0], uids[2]}));
  EXPECT_EQ(Field(r.body, "users", 0, "online"), "false");
  EXPECT_EQ(Field(r.body, "users", 1, "online"), "true");
  EXPECT_EQ(Field(r.body, "users", 1, "name"), "user2");

  r = Call(uids[0], dir::kListUsers, Page(2, 2));
  EXPECT_EQ(Uids(r.body, "users"), (std::vector<uint64_t>{uids[3], uids[4]}));
  r = Call(uids[0], dir::kListUsers, Page(3, 2));  // past the end: empty
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_TRUE(Uids(r.body, "users").empty());
  EXPECT_EQ(r.body.GetUint("total"), 4u);
  r = Call(uids[0], dir::kListUsers, Page(UINT64_MAX, 100));  // overflowing offset
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_TRUE(Uids(r.body, "users").empty());
  r = Call(uids[0], dir::kListUsers);  // defaults: page 1, size 20
  EXPECT_EQ(Uids(r.body, "users").size(), 4u);

  EXPECT_EQ(Call(uids[0], dir::kListUsers, Page(0, 20)).code, Code::kBadRequest);
  EXPECT_EQ(Call(uids[0], dir::kListUsers, Page(1, 0)).code, Code::kBadRequest);
  EXPECT_EQ(Call(uids[0], dir::kListUsers, Page(1, 101)).code, Code::kBadRequest);
  EXPECT_EQ(Call(uids[0], dir::kListUsers, Page(1, 100)).code, Code::kOk);
}

TEST_P(DirectoryTest, GetUserByUidOrName) {
  const uint64_t a = harness_->AddUser("Alice");
  const uint64_t b = harness_->AddUser("bob");
  CallResult r = Call(a, dir::kGetUser, Uint("uid", b));
  ASSERT_EQ(r.code, Code::kOk) << r.error;
  EXPECT_EQ(r.body.GetString("name"), "bob");
  EXPECT_EQ(r.body.GetBool("online"), false);
  codec::MapWriter w(1);
  w.Key("name").Str("Alice");
  r = Call(b, dir::kGetUser, w.Finish());
  ASSERT_EQ(r.code, Code::kOk) << r.error;
  EXPECT_EQ(r.body.GetUint("uid"), a);
  EXPECT_EQ(r.body.GetString("name"), "Alice");
  // Names match exactly: another case, trailing spaces or non-ASCII find no one.
  for (const char* other : {"alice", "Alice ",
                            "Al\xc3\xaf"
                            "ce"}) {
    codec::MapWriter n(1);
    n.Key("name").Str(other);
    EXPECT_EQ(Call(b, dir::kGetUser, n.Finish()).code, Code::kNotFound) << other;
  }
  EXPECT_EQ(Call(a, dir::kGetUser, Uint("uid", 999999)).code, Code::kNotFound);
  EXPECT_EQ(Call(a, dir::kGetUser).code, Code::kBadRequest);
  harness_->DeleteUser(b);
  EXPECT_EQ(Call(a, dir::kGetUser, Uint("uid", b)).code, Code::kNotFound);
}

TEST_P(DirectoryTest, FriendsAreMutualAndChecked) {
  const uint64_t a = harness_->AddUser("a");
  const uint64_t b = harness_->AddUser("b");
  const uint64_t c = harness_->AddUser("c");
  EXPECT_EQ(Call(a, dir::kAddFriend, Uint("uid", a)).code, Code::kBadRequest);
  EXPECT_EQ(Call(a, dir::kAddFriend, Uint("uid", 999999)).code, Code::kNotFound);
  // A request (issue 18): pending until b accepts it.
  CallResult req = Call(a, dir::kAddFriend, Uint("uid", b));
  ASSERT_EQ(req.code, Code::kOk);
  EXPECT_EQ(req.body.GetBool("pending"), true);
  EXPECT_EQ(Call(a, dir::kAddFriend, Uint("uid", b)).code, Code::kConflict);  // pending
  EXPECT_TRUE(Uids(Call(b, dir::kListFriends).body, "friends").empty());
  EXPECT_EQ(Uids(Call(b, dir::kFriendRequests).body, "requests"), (std::vector<uint64_t>{a}));
  EXPECT_EQ(Call(a, dir::kAcceptFriend, Uint("uid", b)).code, Code::kNotFound);  // not to a
  ASSERT_EQ(Call(b, dir::kAcceptFriend, Uint("uid", a)).code, Code::kOk);
  EXPECT_EQ(Call(a, dir::kAddFriend, Uint("uid", b)).code, Code::kConflict);
  EXPECT_EQ(Call(b, dir::kAddFriend, Uint("uid", a)).code, Code::kConflict);  // mutual
  EXPECT_TRUE(Uids(Call(b, dir::kFriendRequests).body, "requests").empty());
  // Asking back someone who asked you makes you friends at once.
  ASSERT_EQ(Call(c, dir::kAddFriend, Uint("uid", b)).code, Code::kOk);
  CallResult back = Call(b, dir::kAddFriend, Uint("uid", c));
  ASSERT_EQ(back.code, Code::kOk);
  EXPECT_EQ(back.body.GetBool("pending"), false);
  sessions_.Set(c, {codec::SessionInfo{c, "default", "c", "h", 1, "", 0}});

  CallResult r = Call(b, dir::kListFriends);
  EXPECT_EQ(Uids(r.body, "friends"), (std::vector<uint64_t>{a, c}));
  EXPECT_EQ(Field(r.body, "friends", 0, "online"), "false");
  EXPECT_EQ(Field(r.body, "friends", 1, "online"), "true");
  EXPECT_EQ(Uids(Call(a, dir::kListFriends).body, "friends"), (std::vector<uint64_t>{b}));

  EXPECT_EQ(Call(a, dir::kRemoveFriend, Uint("uid", c)).code, Code::kNotFound);
  ASSERT_EQ(Call(a, dir::kRemoveFriend, Uint("uid", b)).code, Code::kOk);
  EXPECT_TRUE(Uids(Call(a, dir::kListFriends).body, "friends").empty());
  EXPECT_EQ(Uids(Call(b, dir::kListFriends).body, "friends"), (std::vector<uint64_t>{c}));
  EXPECT_EQ(Call(b, dir::kRemoveFriend, Uint("uid", a)).code, Code::kNotFound);

  harness_->DeleteUser(c);  // deleted users drop out of friend lists
  EXPECT_TRUE(Uids(Call(b, dir::kListFriends).body, "friends").empty());
  EXPECT_EQ(Call(b, dir::kAddFriend, Uint("uid", c)).code, Code::kNotFound);
}

TEST_P(DirectoryTest, GroupsLifecycle) {
  const uint64_t a = harness_->AddUser("a");
  const uint64_t b = harness_->AddUser("b");
  const uint64_t c = harness_->AddUser("c");
  codec::MapWriter w(2);
  w.Key("name").Str("the group");
  w.Key("desc").Str("about things");
  CallResult r = Call(a, dir::kCreateGroup, w.Finish());
  ASSERT_EQ(r.code, Code::kOk) << r.error;
  const uint64_t gid = r.body.GetUint("gid").value_or(0);
  ASSERT_GT(gid, 0u);

  codec::MapWriter empty(1);
  empty.Key("name").Str("");
  EXPECT_EQ(Call(a, dir::kCreateGroup, empty.Finish()).code, Code::kBadRequest);
  codec::MapWriter long_name(1);
  long_name.Key("name").Str(std::string(65, 'x'));
  EXPECT_EQ(Call(a, dir::kCreateGroup, long_name.Finish()).code, Code::kTooLarge);
  codec::MapWriter long_desc(2);
  long_desc.Key("name").Str("g").Key("desc").Str(std::string(513, 'x'));
  EXPECT_EQ(Call(a, dir::kCreateGroup, long_desc.Finish()).code, Code::kTooLarge);
  codec::MapWriter bad_utf8(1);
  bad_utf8.Key("name").Str("\xC3(");
  EXPECT_EQ(Call(a, dir::kCreateGroup, bad_utf8.Finish()).code, Code::kBadRequest);

  EXPECT_EQ(Call(b, dir::kJoinGroup, Uint("gid", 999999)).code, Code::kNotFound);
  ASSERT_EQ(Call(b, dir::kJoinGroup, Uint("gid", gid)).code, Code::kOk);
  EXPECT_EQ(Call(b, dir::kJoinGroup, Uint("gid", gid)).code, Code::kConflict);
  EXPECT_EQ(Call(a, dir::kJoinGroup, Uint("gid", gid)).code, Code::kConflict);

  r = Call(b, dir::kListGroups);
  ASSERT_EQ(Uids(r.body, "groups").size(), 0u);  // groups carry gid, not uid
  EXPECT_EQ(Field(r.body, "groups", 0, "gid"), std::to_string(gid));
  EXPECT_EQ(Field(r.body, "groups", 0, "name"), "the group");
  EXPECT_EQ(Field(r.body, "groups", 0, "desc"), "about things");
  EXPECT_EQ(Field(r.body, "groups", 0, "role"), "member");
  EXPECT_EQ(Field(Call(a, dir::kListGroups).body, "groups", 0, "role"), "owner");
  EXPECT_EQ(Call(c, dir::kListGroups).body.Find("groups")->via.array.size, 0u);

  sessions_.Set(b, {codec::SessionInfo{b, "default", "b", "h", 1, "", 0}});
  r = Call(a, dir::kGroupMembers, Uint("gid", gid));
  ASSERT_EQ(r.code, Code::kOk) << r.error;
  EXPECT_EQ(Uids(r.body, "members"), (std::vector<uint64_t>{a, b}));
  EXPECT_EQ(Field(r.body, "members", 0, "role"), "owner");
  EXPECT_EQ(Field(r.body, "members", 1, "online"), "true");
  EXPECT_EQ(Call(c, dir::kGroupMembers, Uint("gid", gid)).code, Code::kForbidden);
  EXPECT_EQ(Call(c, dir::kGroupMembers, Uint("gid", 999999)).code, Code::kNotFound);

  EXPECT_EQ(Call(c, dir::kLeaveGroup, Uint("gid", gid)).code, Code::kForbidden);
  EXPECT_EQ(Call(c, dir::kLeaveGroup, Uint("gid", 999999)).code, Code::kNotFound);
  ASSERT_EQ(Call(c, dir::kJoinGroup, Uint("gid", gid)).code, Code::kOk);
  // The owner leaves: b (joined before c) becomes the owner.
  ASSERT_EQ(Call(a, dir::kLeaveGroup, Uint("gid", gid)).code, Code::kOk);
  r = Call(b, dir::kGroupMembers, Uint("gid", gid));
  EXPECT_EQ(Uids(r.body, "members"), (std::vector<uint64_t>{b, c}));
  EXPECT_EQ(Field(r.body, "members", 0, "role"), "owner");
  EXPECT_EQ(Field(r.body, "members", 1, "role"), "member");
  EXPECT_EQ(Call(a, dir::kGroupMembers, Uint("gid", gid)).code, Code::kForbidden);
  // A plain member leaves, then the last one: the group is gone.
  ASSERT_EQ(Call(c, dir::kLeaveGroup, Uint("gid", gid)).code, Code::kOk);
  ASSERT_EQ(Call(b, dir::kLeaveGroup, Uint("gid", gid)).code, Code::kOk);
  EXPECT_EQ(Call(b, dir::kJoinGroup, Uint("gid", gid)).code, Code::kNotFound);
  // A new group never reuses the gid.
  codec::MapWriter again(1);
  again.Key("name").Str("again");
  EXPECT_GT(Call(a, dir::kCreateGroup, again.Finish()).body.GetUint("gid").value_or(0), gid);
}

TEST_P(DirectoryTest, OwnerLeavingSkipsDeletedMembers) {
  const uint64_t a = harness_->AddUser("a");
  const uint64_t b = harness_->AddUser("b");
  const uint64_t c = harness_->AddUser("c");
  codec::MapWriter w(1);
  w.Key("name").Str("g");
  const uint64_t gid = Call(a, dir::kCreateGroup, w.Finish()).body.GetUint("gid").value_or(0);
  ASSERT_EQ(Call(b, dir::kJoinGroup, Uint("gid", gid)).code, Code::kOk);
  ASSERT_EQ(Call(c, dir::kJoinGroup, Uint("gid", gid)).code, Code::kOk);
  harness_->DeleteUser(b);
  ASSERT_EQ(Call(a, dir::kLeaveGroup, Uint("gid", gid)).code, Code::kOk);
  CallResult r = Call(c, dir::kGroupMembers, Uint("gid", gid));
  EXPECT_EQ(Uids(r.body, "members"), (std::vector<uint64_t>{c}));
  EXPECT_EQ(Field(r.body, "members", 0, "role"), "owner");
}

INSTANTIATE_TEST_SUITE_P(
    Stores, DirectoryTest,
    ::testing::Values(HarnessFactory{"memory", [] { return std::make_unique<MemoryHarness>(); }},
                      HarnessFactory{"mariadb", [] { return std::make_unique<MariaDbHarness>(); }}),
    [](const auto& p) { return p.param.name; });

// The block-indexed page lookup agrees with a plain OFFSET scan across block
// boundaries, with holes from deleted users.
TEST(MariaDbUserPagingTest, MatchesOffsetScanAcrossBlocks) {
  MariaDbHarness h;
  auto store = h.MakeStore();
  Db* db = h.db();
  db->Exec("INSERT INTO users (name, pwhash) SELECT CONCAT('p', seq), 'x' FROM seq_1_to_5000");
  // Holes: every 7th user, and the whole second block.
  db->Exec(
      "UPDATE users SET name = NULL, deleted_at = NOW(3) WHERE uid % 7 = 0 OR uid DIV 1024 = 1");
  const uint64_t live = db->Query("SELECT COUNT(*) FROM users WHERE deleted_at IS NULL")
                            .rows.at(0)
                            .Uint(0)
                            .value_or(0);
  const std::vector<uint64_t> offsets = {0,    1,    800,      877,  878,      1500,
                                         2500, 3599, live - 3, live, live + 10};
  for (uint64_t offset : offsets) {
    SCOPED_TRACE("offset " + std::to_string(offset));
    DirectoryStore::UserPage page = store->ListUsers(offset, 20);
    EXPECT_EQ(page.total, live);
    DbResult want = db->Query(
        "SELECT uid, name FROM users WHERE deleted_at IS NULL ORDER BY uid LIMIT ?, 20", {offset});
    ASSERT_EQ(page.users.size(), want.rows.size());
    for (size_t i = 0; i < want.rows.size(); ++i) {
      EXPECT_EQ(page.users[i].uid, want.rows[i].Uint(0));
      EXPECT_EQ(page.users[i].name, want.rows[i].Str(1));
    }
  }
}

}  // namespace
}  // namespace imbus::actors::testing
