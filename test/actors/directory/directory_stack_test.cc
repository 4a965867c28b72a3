// DIRECTORY through the real binaries (broker, edge, actor with auth+directory+
// presence) and the typed client API: every command, its errors, UNAUTHENTICATED
// before login, and `online` flags from the broker's session table.
#include <gtest/gtest.h>

#include "client/directory_api.h"
#include "codec/commands.h"
#include "test/integration/stack_util.h"

namespace imbus::testing {
namespace {

using codec::Code;
constexpr int C(Code c) { return static_cast<int>(c); }

class DirectoryStackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new Stack();
    stack_->StartBroker();
    stack_->StartEdge();
    stack_->StartActor("auth,directory,presence");
    ASSERT_TRUE(WaitWorkers(*stack_, "directory", 1));
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << stack_->Logs();
  }
  // A registered, logged-in user.
  struct User {
    client::Client c;
    uint64_t uid = 0;
    std::string name;
  };
  User NewUser(const std::string& prefix) {
    User u{Connected(*stack_), 0, UniqueName(prefix)};
    auto reg = u.c.Register(u.name, "password1");
    EXPECT_TRUE(reg.ok()) << reg.Describe();
    u.uid = reg.value;
    auto login = u.c.Login(u.name, "password1");
    EXPECT_TRUE(login.ok()) << login.Describe();
    return u;
  }
  static Stack* stack_;
};
Stack* DirectoryStackTest::stack_ = nullptr;

TEST_F(DirectoryStackTest, UnauthenticatedBeforeLogin) {
  client::Client c = Connected(*stack_);
  EXPECT_EQ(client::ListUsers(c).code, C(Code::kUnauthenticated));
  EXPECT_EQ(client::GetUser(c, 1).code, C(Code::kUnauthenticated));
  EXPECT_EQ(client::AddFriend(c, 1).code, C(Code::kUnauthenticated));
  EXPECT_EQ(client::ListGroups(c).code, C(Code::kUnauthenticated));
}

TEST_F(DirectoryStackTest, UsersAndOnlineFlags) {
  User a = NewUser("la");
  User b = NewUser("lb");
  auto page = client::ListUsers(a.c, 1, 100);
  ASSERT_TRUE(page.ok()) << page.Describe();
  EXPECT_GE(page.value.total, 2u);
  EXPECT_EQ(page.value.page, 1u);
  bool saw_b = false;
  for (size_t i = 0; i < page.value.users.size(); ++i) {
    if (i > 0) {
      EXPECT_LT(page.value.users[i - 1].uid, page.value.users[i].uid);
    }
    if (page.value.users[i].uid == b.uid) {
      saw_b = true;
      EXPECT_EQ(page.value.users[i].name, b.name);
      EXPECT_TRUE(page.value.users[i].online);
    }
  }
  EXPECT_TRUE(saw_b);
  EXPECT_EQ(client::ListUsers(a.c, 0, 20).code, C(Code::kBadRequest));
  EXPECT_EQ(client::ListUsers(a.c, 1, 0).code, C(Code::kBadRequest));
  EXPECT_EQ(client::ListUsers(a.c, 1, 101).code, C(Code::kBadRequest));
  auto past = client::ListUsers(a.c, 1000000, 100);
  ASSERT_TRUE(past.ok());
  EXPECT_TRUE(past.value.users.empty());

  auto got = client::GetUserByName(a.c, b.name);
  ASSERT_TRUE(got.ok()) << got.Describe();
  EXPECT_EQ(got.value.uid, b.uid);
  EXPECT_TRUE(got.value.online);
  ASSERT_TRUE(b.c.Logout().ok());
  got = client::GetUser(a.c, b.uid);
  ASSERT_TRUE(got.ok()) << got.Describe();
  EXPECT_EQ(got.value.name, b.name);
  EXPECT_FALSE(got.value.online);  // straight from the session table
  EXPECT_EQ(client::GetUser(a.c, 99999999).code, C(Code::kNotFound));
  EXPECT_EQ(client::GetUserByName(a.c, "no-such-user-x").code, C(Code::kNotFound));
}

TEST_F(DirectoryStackTest, Friends) {
  User a = NewUser("fa");
  User b = NewUser("fb");
  EXPECT_EQ(client::AddFriend(a.c, a.uid).code, C(Code::kBadRequest));
  EXPECT_EQ(client::AddFriend(a.c, 99999999).code, C(Code::kNotFound));
  ASSERT_TRUE(client::AddFriend(a.c, b.uid).ok());                    // a request (issue 18)
  EXPECT_EQ(client::AddFriend(a.c, b.uid).code, C(Code::kConflict));  // pending already
  ASSERT_TRUE(client::AcceptFriend(b.c, a.uid).ok());
  EXPECT_EQ(client::AddFriend(b.c, a.uid).code, C(Code::kConflict));
  auto friends = client::ListFriends(b.c);
  ASSERT_TRUE(friends.ok()) << friends.Describe();
  ASSERT_EQ(friends.value.size(), 1u);
  EXPECT_EQ(friends.value[0].uid, a.uid);
  EXPECT_EQ(friends.value[0].name, a.name);
  EXPECT_TRUE(friends.value[0].online);
  ASSERT_TRUE(client::RemoveFriend(b.c, a.uid).ok());
  EXPECT_EQ(client::RemoveFriend(a.c, b.uid).code, C(Code::kNotFound));
  EXPECT_TRUE(client::ListFriends(a.c).value.empty());
}

TEST_F(DirectoryStackTest, Groups) {
  User a = NewUser("ga");
  User b = NewUser("gb");
  User c = NewUser("gc");
  auto gid = client::CreateGroup(a.c, "team", "the team");
  ASSERT_TRUE(gid.ok()) << gid.Describe();
  EXPECT_EQ(client::CreateGroup(a.c, "").code, C(Code::kBadRequest));
  EXPECT_EQ(client::CreateGroup(a.c, std::string(65, 'n')).code, C(Code::kTooLarge));
  EXPECT_EQ(client::CreateGroup(a.c, "n", std::string(513, 'd')).code, C(Code::kTooLarge));
  EXPECT_EQ(client::JoinGroup(b.c, 99999999).code, C(Code::kNotFound));
  ASSERT_TRUE(client::JoinGroup(b.c, gid.value).ok());
  EXPECT_EQ(client::JoinGroup(b.c, gid.value).code, C(Code::kConflict));

  auto groups = client::ListGroups(b.c);
  ASSERT_TRUE(groups.ok()) << groups.Describe();
  ASSERT_EQ(groups.value.size(), 1u);
  EXPECT_EQ(groups.value[0].gid, gid.value);
  EXPECT_EQ(groups.value[0].name, "team");
  EXPECT_EQ(groups.value[0].desc, "the team");
  EXPECT_EQ(groups.value[0].role, "member");

  auto members = client::GroupMembers(a.c, gid.value);
  ASSERT_TRUE(members.ok()) << members.Describe();
  ASSERT_EQ(members.value.size(), 2u);
  EXPECT_EQ(members.value[0].uid, a.uid);
  EXPECT_EQ(members.value[0].role, "owner");
  EXPECT_TRUE(members.value[0].online);
  EXPECT_EQ(members.value[1].uid, b.uid);
  EXPECT_EQ(client::GroupMembers(c.c, gid.value).code, C(Code::kForbidden));
  EXPECT_EQ(client::GroupMembers(c.c, 99999999).code, C(Code::kNotFound));
  EXPECT_EQ(client::LeaveGroup(c.c, gid.value).code, C(Code::kForbidden));
  EXPECT_EQ(client::LeaveGroup(c.c, 99999999).code, C(Code::kNotFound));

  // The owner leaves: b inherits; b leaves last: the group is deleted.
  ASSERT_TRUE(client::LeaveGroup(a.c, gid.value).ok());
  members = client::GroupMembers(b.c, gid.value);
  ASSERT_EQ(members.value.size(), 1u);
  EXPECT_EQ(members.value[0].role, "owner");
  ASSERT_TRUE(client::LeaveGroup(b.c, gid.value).ok());
  EXPECT_EQ(client::JoinGroup(c.c, gid.value).code, C(Code::kNotFound));
}

}  // namespace
}  // namespace imbus::testing
