// Lists too large for one frame, through the real stack (docs/protocol.md "Lists are
// paged"): a user with 5,000 friends, 2,000 conversations and 300 groups with long
// descriptions, in a group of 90,000 members. A request without `after` or `limit`
// (an older client) gets a readable first page and `more`; the client library and
// the `imbus` CLI page through all of it; `limit` and `after` are checked. Rows are
// bulk-loaded straight into the stack's database with MariaDB's sequence engine.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>

#include "actors/db/db.h"
#include "client/directory_api.h"
#include "client/msg_api.h"
#include "codec/body.h"
#include "codec/commands.h"
#include "test/integration/stack_db.h"
#include "test/integration/stack_util.h"
#include "test/support/mariadb.h"

namespace imbus::testing {
namespace {

using codec::Code;

constexpr uint64_t kMembers = 90000;  // bulk users, all in one group
constexpr uint64_t kFriends = 5000;   // the first of them are the victim's friends
constexpr uint64_t kConvs = 2000;     // direct conversations with messages
constexpr uint64_t kGroups = 300;     // groups with a 512-byte description
const uint16_t kDirectory = codec::ToWire(codec::Service::kDirectory);
const uint16_t kMsg = codec::ToWire(codec::Service::kMsg);

std::vector<uint64_t> Uints(actors::Db& db, const std::string& sql,
                            const std::vector<actors::DbParam>& params) {
  std::vector<uint64_t> out;
  for (const auto& row : db.Query(sql, params).rows) out.push_back(row.Uint(0).value_or(0));
  return out;
}

std::string Body(std::initializer_list<std::pair<const char*, uint64_t>> fields) {
  codec::MapWriter w(static_cast<uint32_t>(fields.size()));
  for (const auto& [k, v] : fields) w.Key(k).Uint(v);
  return w.Finish();
}

class LargeListsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new Stack();
    stack_->StartBroker();
    stack_->StartEdge();
    stack_->StartActor("auth,directory,msg");
    ASSERT_TRUE(WaitWorkers(*stack_, "msg", 1)) << stack_->Logs();  // schema applied
    client::Client c = Connected(*stack_);
    ASSERT_TRUE(c.Register("victim", "password1").ok());
    auto login = c.Login("victim", "password1");
    ASSERT_TRUE(login.ok()) << login.Describe();
    victim_ = login.value.uid;
    auto gid = client::CreateGroup(c, "crowd");
    ASSERT_TRUE(gid.ok()) << gid.Describe();
    crowd_ = gid.value;

    actors::Db db(StackDbConfig(*stack_));
    db.Exec("INSERT INTO users (name, pwhash) SELECT CONCAT('crowd', seq), 'x' FROM seq_1_to_" +
            std::to_string(kMembers));
    const std::string first =
        "(SELECT uid FROM users WHERE name LIKE 'crowd%' ORDER BY uid LIMIT " +
        std::to_string(kFriends) + ")";
    const std::string v = std::to_string(victim_);
    db.Exec("INSERT INTO friends (uid, friend_uid) SELECT " + v + ", uid FROM " + first + " f");
    db.Exec("INSERT INTO friends (uid, friend_uid) SELECT uid, " + v + " FROM " + first + " f");
    db.Exec("INSERT INTO group_members (gid, uid, role) SELECT " + std::to_string(crowd_) +
            ", uid, 'member' FROM users WHERE name LIKE 'crowd%'");
    // Conversations d:<victim>:<victim + 1000000 + seq>, each with one message.
    const std::string conv = "CONCAT('d:', " + v + ", ':', " + v + " + 1000000 + seq)";
    db.Exec("INSERT INTO acks (uid, conv, acked_seq) SELECT " + v + ", " + conv +
            ", 0 FROM seq_1_to_" + std::to_string(kConvs));
    db.Exec("INSERT INTO messages (conv, seq, sender, cmid, ts, gid, text) SELECT " + conv +
            ", 1, " + v + ", CONCAT('c', seq), 0, 0, 'x' FROM seq_1_to_" + std::to_string(kConvs));
    db.Exec(
        "INSERT INTO chat_groups (name, description, owner_uid) SELECT CONCAT('g', seq), "
        "REPEAT('d', 512), " +
        v + " FROM seq_1_to_" + std::to_string(kGroups));
    db.Exec("INSERT INTO group_members (gid, uid, role) SELECT gid, " + v +
            ", 'owner' FROM chat_groups WHERE name LIKE 'g%'");
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << stack_->Logs().substr(0, 20000);
  }

  client::Client Victim() {
    client::Client c = Connected(*stack_);
    EXPECT_TRUE(c.Login("victim", "password1").ok());
    return c;
  }

  static Stack* stack_;
  static uint64_t victim_;
  static uint64_t crowd_;
};

Stack* LargeListsTest::stack_ = nullptr;
uint64_t LargeListsTest::victim_ = 0;
uint64_t LargeListsTest::crowd_ = 0;

// What an older client sends: no `after`, no `limit`. It gets the first entries in
// key order, in a frame it can read, and `more`.
TEST_F(LargeListsTest, ARequestWithoutCursorGetsAReadableFirstPage) {
  client::Client c = Victim();
  actors::Db db(StackDbConfig(*stack_));
  struct Case {
    uint16_t service, command;
    std::string body;
    const char* array;
    size_t most;  // entries at most in the first page
  };
  const Case cases[] = {
      {kDirectory, codec::directory::kListFriends, codec::EmptyBody(), "friends", 200},
      {kDirectory, codec::directory::kGroupMembers, Body({{"gid", crowd_}}), "members", 200},
      {kDirectory, codec::directory::kListGroups, codec::EmptyBody(), "groups", 200},
      {kMsg, codec::msg::kConversations, codec::EmptyBody(), "convs", 200},
  };
  for (const Case& k : cases) {
    client::Response r = c.Call(k.service, k.command, k.body);
    ASSERT_EQ(r.code, 0) << k.array << ": " << r.error;
    const size_t n = codec::ArrayOf(r.body, k.array).size();
    EXPECT_GT(n, 0u) << k.array;
    EXPECT_LE(n, k.most) << k.array;
    EXPECT_EQ(r.body.GetBool("more"), std::optional<bool>(true)) << k.array;
  }
  // Friends come in uid order from the lowest.
  client::Response r = c.Call(kDirectory, codec::directory::kListFriends, codec::EmptyBody());
  const auto page = codec::ArrayOf(r.body, "friends");
  const std::vector<uint64_t> want = Uints(
      db, "SELECT friend_uid FROM friends WHERE uid = ? ORDER BY friend_uid LIMIT 200", {victim_});
  ASSERT_EQ(page.size(), want.size());
  for (size_t i = 0; i < page.size(); ++i) EXPECT_EQ(codec::UintIn(*page[i], "uid"), want[i]);
  // 300 groups of ~600 bytes do not fit one frame: the page is cut by size.
  r = c.Call(kDirectory, codec::directory::kListGroups, Body({{"limit", 500}}));
  const size_t groups = codec::ArrayOf(r.body, "groups").size();
  EXPECT_GT(groups, 50u);
  EXPECT_LT(groups, 120u);
  EXPECT_EQ(r.body.GetBool("more"), std::optional<bool>(true));
  EXPECT_TRUE(c.connection().closed() == false);
}

TEST_F(LargeListsTest, TheClientPagesThroughEverything) {
  client::Client c = Victim();
  actors::Db db(StackDbConfig(*stack_));

  auto friends = client::ListFriends(c);
  ASSERT_TRUE(friends.ok()) << friends.Describe();
  std::vector<uint64_t> got;
  for (const auto& u : friends.value) got.push_back(u.uid);
  EXPECT_EQ(got, Uints(db, "SELECT friend_uid FROM friends WHERE uid = ? ORDER BY friend_uid",
                       {victim_}));
  EXPECT_EQ(got.size(), kFriends);

  auto members = client::GroupMembers(c, crowd_);
  ASSERT_TRUE(members.ok()) << members.Describe();
  got.clear();
  for (const auto& m : members.value) got.push_back(m.uid);
  EXPECT_EQ(got, Uints(db, "SELECT uid FROM group_members WHERE gid = ? ORDER BY uid", {crowd_}));
  EXPECT_EQ(got.size(), kMembers + 1);

  auto groups = client::ListGroups(c);
  ASSERT_TRUE(groups.ok()) << groups.Describe();
  EXPECT_EQ(groups.value.size(), kGroups + 1);
  for (size_t i = 1; i < groups.value.size(); ++i) {
    EXPECT_LT(groups.value[i - 1].gid, groups.value[i].gid);
  }

  auto convs = client::Conversations(c);
  ASSERT_TRUE(convs.ok()) << convs.Describe();
  EXPECT_EQ(convs.value.size(), kConvs);
  for (size_t i = 1; i < convs.value.size(); ++i) {
    EXPECT_LT(convs.value[i - 1].conv, convs.value[i].conv);
  }
}

TEST_F(LargeListsTest, TheCliPrintsEveryEntry) {
  const std::string cmd = std::string(IMBUS_BINARY) +
                          " --server 127.0.0.1:" + std::to_string(stack_->edge_port()) + " ";
  auto lines = [&](const std::string& args, const std::string& needle) {
    FILE* p =
        popen((cmd + args + " --user victim --password password1 </dev/null 2>&1").c_str(), "r");
    std::string out;
    std::array<char, 65536> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    const int status = pclose(p);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << args << ": " << out.substr(0, 500);
    size_t count = 0;
    for (size_t at = out.find(needle); at != std::string::npos; at = out.find(needle, at + 1)) {
      ++count;
    }
    return count;
  };
  EXPECT_EQ(lines("friends", "crowd"), kFriends);
  EXPECT_EQ(lines("convs", "d:"), kConvs);
  EXPECT_EQ(lines("groups members " + std::to_string(crowd_), "crowd"), kMembers);
}

TEST_F(LargeListsTest, LimitAndAfterAreChecked) {
  client::Client c = Victim();
  auto code = [&](uint16_t service, uint16_t command, const std::string& body) {
    return c.Call(service, command, body).code;
  };
  const int kBad = static_cast<int>(Code::kBadRequest);
  EXPECT_EQ(code(kDirectory, codec::directory::kListFriends, Body({{"limit", 0}})), kBad);
  EXPECT_EQ(code(kDirectory, codec::directory::kListFriends, Body({{"limit", 501}})), kBad);
  EXPECT_EQ(code(kMsg, codec::msg::kConversations, Body({{"limit", 501}})), kBad);
  EXPECT_EQ(code(kMsg, codec::msg::kConversations, Body({{"after", 5}})), kBad);
  codec::MapWriter w(1);
  w.Key("after").Str(std::string("d:\xff\xfe", 4));
  EXPECT_EQ(code(kMsg, codec::msg::kConversations, w.Finish()), kBad);

  // A page starts after the key given, and the last one says no more.
  client::Response r =
      c.Call(kDirectory, codec::directory::kGroupMembers, Body({{"gid", crowd_}, {"limit", 3}}));
  ASSERT_EQ(r.code, 0) << r.error;
  const auto first = codec::ArrayOf(r.body, "members");
  ASSERT_EQ(first.size(), 3u);
  const uint64_t third = codec::UintIn(*first[2], "uid");
  r = c.Call(kDirectory, codec::directory::kGroupMembers,
             Body({{"gid", crowd_}, {"limit", 2}, {"after", third}}));
  const auto next = codec::ArrayOf(r.body, "members");
  ASSERT_EQ(next.size(), 2u);
  EXPECT_GT(codec::UintIn(*next[0], "uid"), third);
  r = c.Call(kDirectory, codec::directory::kListFriends, Body({{"after", UINT64_MAX - 1}}));
  EXPECT_TRUE(codec::ArrayOf(r.body, "friends").empty());
  EXPECT_EQ(r.body.GetBool("more"), std::optional<bool>(false));
}

}  // namespace
}  // namespace imbus::testing
