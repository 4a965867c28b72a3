// Groups with roles and join policies (issue 18) on the real stack: each policy
// (open, by request, by invitation) admits exactly whom it should; admins approve,
// reject, invite, remove members and mute; the owner sets roles, transfers and
// dissolves; every membership change is pushed to the members.
#include <gtest/gtest.h>

#include <initializer_list>
#include <variant>

#include "client/directory_api.h"
#include "client/msg_api.h"
#include "codec/commands.h"
#include "test/integration/stack_util.h"

namespace imbus::testing {
namespace {

using codec::Code;
using std::chrono::milliseconds;
using std::chrono::seconds;
constexpr int C(Code c) { return static_cast<int>(c); }

struct User {
  client::Client c;
  uint64_t uid = 0;
};

using Field = std::pair<const char*, std::variant<uint64_t, std::string, bool>>;

client::Response Dir(User& u, uint16_t command, std::initializer_list<Field> fields) {
  codec::MapWriter w(static_cast<uint32_t>(fields.size()));
  for (const Field& f : fields) {
    w.Key(f.first);
    if (auto* n = std::get_if<uint64_t>(&f.second)) w.Uint(*n);
    if (auto* s = std::get_if<std::string>(&f.second)) w.Str(*s);
    if (auto* b = std::get_if<bool>(&f.second)) w.Bool(*b);
  }
  return u.c.Call(codec::ToWire(codec::Service::kDirectory), command, w.Finish());
}

// GROUP_EVENT pushes (event names) for gid seen within `window`.
std::vector<std::string> Events(User& u, uint64_t gid, milliseconds window) {
  std::vector<std::string> out;
  const auto deadline = std::chrono::steady_clock::now() + window;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return out;
    std::optional<client::Push> p = u.c.connection().WaitPush(left);
    if (!p) return out;
    if (p->service == codec::ToWire(codec::Service::kDirectory) &&
        p->command == codec::directory::kGroupEvent && p->body.GetUint("gid") == gid) {
      out.push_back(p->body.GetString("event").value_or(""));
    }
  }
}

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

class GroupRolesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new Stack();
    stack_->StartBroker();
    stack_->StartEdge();
    stack_->StartActor("auth,directory,msg");
    for (const char* s : {"auth", "directory", "msg"}) ASSERT_TRUE(WaitWorkers(*stack_, s, 1));
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << stack_->Logs();
  }
  User NewUser(const std::string& prefix) {
    User u{Connected(*stack_), 0};
    const std::string name = UniqueName(prefix);
    auto reg = u.c.Register(name, "password1");
    EXPECT_TRUE(reg.ok()) << reg.Describe();
    u.uid = reg.value;
    EXPECT_TRUE(u.c.Login(name, "password1").ok());
    return u;
  }
  uint64_t Create(User& owner, const std::string& policy) {
    client::Response r = Dir(owner, codec::directory::kCreateGroup,
                             {{"name", std::string("g-" + policy)}, {"policy", policy}});
    EXPECT_TRUE(r.ok()) << r.Describe();
    return r.body.GetUint("gid").value_or(0);
  }
  bool IsMember(User& u, uint64_t gid) {
    return Dir(u, codec::directory::kGroupMembers, {{"gid", gid}}).ok();
  }
  static Stack* stack_;
};
Stack* GroupRolesTest::stack_ = nullptr;

TEST_F(GroupRolesTest, OpenAdmitsAnyone) {
  User owner = NewUser("oo"), anyone = NewUser("oa");
  const uint64_t gid = Create(owner, "open");
  client::Response r = Dir(anyone, codec::directory::kJoinGroup, {{"gid", gid}});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.body.GetBool("pending"), false);
  EXPECT_TRUE(IsMember(anyone, gid));
  EXPECT_TRUE(Has(Events(owner, gid, milliseconds(1000)), "joined"));
  EXPECT_EQ(Dir(anyone, codec::directory::kJoinGroup, {{"gid", gid}}).code, C(Code::kConflict));
}

TEST_F(GroupRolesTest, ByRequestAdmitsOnlyWhomAnAdminApproves) {
  User owner = NewUser("ro"), member = NewUser("rm"), asker = NewUser("ra"),
       refused = NewUser("rr");
  const uint64_t gid = Create(owner, "request");
  // The owner invites a plain member (an invitation admits past the policy).
  ASSERT_TRUE(Dir(owner, codec::directory::kInvite, {{"gid", gid}, {"uid", member.uid}}).ok());
  ASSERT_TRUE(Dir(member, codec::directory::kJoinGroup, {{"gid", gid}}).ok());
  (void)Events(owner, gid, milliseconds(300));

  client::Response r = Dir(asker, codec::directory::kJoinGroup, {{"gid", gid}});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.body.GetBool("pending"), true);
  EXPECT_FALSE(IsMember(asker, gid));
  EXPECT_EQ(client::SendToGroup(asker.c, gid, "x1", "let me in").code, C(Code::kForbidden));
  EXPECT_TRUE(Has(Events(owner, gid, milliseconds(1000)), "join_request"));
  EXPECT_EQ(Dir(asker, codec::directory::kJoinGroup, {{"gid", gid}}).code, C(Code::kConflict));
  // The admins see it pending; a plain member may neither list nor approve it.
  client::Response pending = Dir(owner, codec::directory::kGroupPending, {{"gid", gid}});
  ASSERT_TRUE(pending.ok()) << pending.Describe();
  EXPECT_EQ(Dir(member, codec::directory::kGroupPending, {{"gid", gid}}).code, C(Code::kForbidden));
  EXPECT_EQ(Dir(member, codec::directory::kApprove, {{"gid", gid}, {"uid", asker.uid}}).code,
            C(Code::kForbidden));
  ASSERT_TRUE(Dir(owner, codec::directory::kApprove, {{"gid", gid}, {"uid", asker.uid}}).ok());
  EXPECT_TRUE(IsMember(asker, gid));
  EXPECT_TRUE(Has(Events(member, gid, milliseconds(1000)), "joined"));
  EXPECT_TRUE(client::SendToGroup(asker.c, gid, "x2", "thanks").ok());

  // Rejected: told, and not a member.
  ASSERT_TRUE(Dir(refused, codec::directory::kJoinGroup, {{"gid", gid}}).ok());
  ASSERT_TRUE(Dir(owner, codec::directory::kReject, {{"gid", gid}, {"uid", refused.uid}}).ok());
  EXPECT_TRUE(Has(Events(refused, gid, milliseconds(1000)), "rejected"));
  EXPECT_FALSE(IsMember(refused, gid));
  EXPECT_EQ(Dir(owner, codec::directory::kApprove, {{"gid", gid}, {"uid", refused.uid}}).code,
            C(Code::kNotFound));
}

TEST_F(GroupRolesTest, ByInvitationAdmitsOnlyTheInvited) {
  User owner = NewUser("io"), invited = NewUser("ii"), uninvited = NewUser("iu");
  const uint64_t gid = Create(owner, "invite");
  EXPECT_EQ(Dir(uninvited, codec::directory::kJoinGroup, {{"gid", gid}}).code, C(Code::kForbidden));
  EXPECT_EQ(Dir(invited, codec::directory::kJoinGroup, {{"gid", gid}}).code, C(Code::kForbidden));
  client::Response inv =
      Dir(owner, codec::directory::kInvite, {{"gid", gid}, {"uid", invited.uid}});
  ASSERT_TRUE(inv.ok()) << inv.Describe();
  EXPECT_EQ(inv.body.GetBool("pending"), true);
  EXPECT_TRUE(Has(Events(invited, gid, milliseconds(1000)), "invited"));
  EXPECT_FALSE(IsMember(invited, gid));  // not before accepting
  ASSERT_TRUE(Dir(invited, codec::directory::kJoinGroup, {{"gid", gid}}).ok());
  EXPECT_TRUE(IsMember(invited, gid));
  EXPECT_EQ(Dir(uninvited, codec::directory::kJoinGroup, {{"gid", gid}}).code, C(Code::kForbidden));
  EXPECT_FALSE(IsMember(uninvited, gid));
  // Only admins invite.
  EXPECT_EQ(Dir(invited, codec::directory::kInvite, {{"gid", gid}, {"uid", uninvited.uid}}).code,
            C(Code::kForbidden));
}

TEST_F(GroupRolesTest, AdminsRemoveAndMuteOwnerTransfersAndDissolves) {
  User owner = NewUser("ao"), admin = NewUser("aa"), member = NewUser("am"), other = NewUser("ax");
  const uint64_t gid = Create(owner, "open");
  for (User* u : {&admin, &member, &other}) {
    ASSERT_TRUE(Dir(*u, codec::directory::kJoinGroup, {{"gid", gid}}).ok());
  }
  EXPECT_EQ(Dir(admin, codec::directory::kSetRole,
                {{"gid", gid}, {"uid", member.uid}, {"role", std::string("admin")}})
                .code,
            C(Code::kForbidden));  // only the owner sets roles
  ASSERT_TRUE(Dir(owner, codec::directory::kSetRole,
                  {{"gid", gid}, {"uid", admin.uid}, {"role", std::string("admin")}})
                  .ok());
  (void)Events(member, gid, milliseconds(300));

  // The admin removes a member (who is told); not the owner.
  ASSERT_TRUE(Dir(admin, codec::directory::kRemoveMember, {{"gid", gid}, {"uid", other.uid}}).ok());
  EXPECT_TRUE(Has(Events(other, gid, milliseconds(1000)), "removed"));
  EXPECT_TRUE(Has(Events(member, gid, milliseconds(1000)), "removed"));
  EXPECT_FALSE(IsMember(other, gid));
  EXPECT_EQ(Dir(admin, codec::directory::kRemoveMember, {{"gid", gid}, {"uid", owner.uid}}).code,
            C(Code::kForbidden));
  EXPECT_EQ(Dir(member, codec::directory::kRemoveMember, {{"gid", gid}, {"uid", admin.uid}}).code,
            C(Code::kForbidden));

  // Muted: only admins (and the owner) write.
  ASSERT_TRUE(Dir(admin, codec::directory::kSetGroup, {{"gid", gid}, {"muted", true}}).ok());
  EXPECT_TRUE(Has(Events(member, gid, milliseconds(1000)), "settings"));
  EXPECT_EQ(client::SendToGroup(member.c, gid, "m1", "hello?").code, C(Code::kForbidden));
  EXPECT_TRUE(client::SendToGroup(admin.c, gid, "a1", "announcement").ok());
  ASSERT_TRUE(Dir(admin, codec::directory::kSetGroup, {{"gid", gid}, {"muted", false}}).ok());
  EXPECT_TRUE(client::SendToGroup(member.c, gid, "m2", "hello").ok());

  // The owner hands over; the old owner is an admin now and cannot dissolve.
  EXPECT_EQ(Dir(admin, codec::directory::kTransferOwner, {{"gid", gid}, {"uid", admin.uid}}).code,
            C(Code::kForbidden));
  ASSERT_TRUE(
      Dir(owner, codec::directory::kTransferOwner, {{"gid", gid}, {"uid", admin.uid}}).ok());
  EXPECT_TRUE(Has(Events(member, gid, milliseconds(1000)), "owner"));
  auto members = client::GroupMembers(member.c, gid);
  ASSERT_TRUE(members.ok());
  for (const client::MemberInfo& m : members.value) {
    if (m.uid == admin.uid) {
      EXPECT_EQ(m.role, "owner");
    }
    if (m.uid == owner.uid) {
      EXPECT_EQ(m.role, "admin");
    }
  }
  EXPECT_EQ(Dir(owner, codec::directory::kDissolve, {{"gid", gid}}).code, C(Code::kForbidden));
  ASSERT_TRUE(Dir(admin, codec::directory::kDissolve, {{"gid", gid}}).ok());
  EXPECT_TRUE(Has(Events(member, gid, milliseconds(1000)), "dissolved"));
  EXPECT_EQ(Dir(member, codec::directory::kGroupMembers, {{"gid", gid}}).code, C(Code::kNotFound));
  EXPECT_EQ(client::SendToGroup(member.c, gid, "m3", "anyone?").code, C(Code::kNotFound));
}

// The owner's LEAVE_GROUP hands the group to the longest-standing member: the members
// hear "left" and then "owner" naming the heir, who can now act as the owner.
TEST_F(GroupRolesTest, OwnerWhoLeavesHandsOverWithAnOwnerEvent) {
  User owner = NewUser("lo"), first = NewUser("lf"), second = NewUser("ls");
  const uint64_t gid = Create(owner, "open");
  ASSERT_TRUE(Dir(first, codec::directory::kJoinGroup, {{"gid", gid}}).ok());
  std::this_thread::sleep_for(milliseconds(5));  // joined_at decides the heir
  ASSERT_TRUE(Dir(second, codec::directory::kJoinGroup, {{"gid", gid}}).ok());
  (void)Events(second, gid, milliseconds(300));

  ASSERT_TRUE(Dir(owner, codec::directory::kLeaveGroup, {{"gid", gid}}).ok());
  std::vector<std::pair<std::string, uint64_t>> seen;  // (event, uid)
  const auto deadline = std::chrono::steady_clock::now() + milliseconds(2000);
  while (seen.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::optional<client::Push> p = second.c.connection().WaitPush(milliseconds(500));
    if (p && p->command == codec::directory::kGroupEvent && p->body.GetUint("gid") == gid) {
      seen.emplace_back(p->body.GetString("event").value_or(""),
                        p->body.GetUint("uid").value_or(0));
    }
  }
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], std::make_pair(std::string("left"), owner.uid));
  EXPECT_EQ(seen[1], std::make_pair(std::string("owner"), first.uid));
  EXPECT_TRUE(Dir(first, codec::directory::kSetGroup, {{"gid", gid}, {"muted", true}}).ok());
  EXPECT_EQ(Dir(second, codec::directory::kDissolve, {{"gid", gid}}).code, C(Code::kForbidden));
  EXPECT_TRUE(Dir(first, codec::directory::kDissolve, {{"gid", gid}}).ok());
}

}  // namespace
}  // namespace imbus::testing
