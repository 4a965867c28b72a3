// Consent (issue 18) on the real stack: friend requests (pending on both sides,
// pushes to both, paged lists, accept, decline), blocking (no messages, no request,
// no presence, no P2P address, no typing) and the legacy --immediate-friends mode.
#include <gtest/gtest.h>

#include "client/directory_api.h"
#include "client/msg_api.h"
#include "client/presence_api.h"
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
  std::string name;
};

class ConsentTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> actor_args = {}) {
    stack_ = std::make_unique<Stack>(StackOptions{.actor_args = std::move(actor_args)});
    stack_->StartBroker();
    stack_->StartEdge();
    stack_->StartActor("auth,directory,presence,msg");
    for (const char* s : {"auth", "directory", "presence", "msg"}) {
      ASSERT_TRUE(WaitWorkers(*stack_, s, 1)) << s;
    }
  }
  void TearDown() override {
    if (HasFailure() && stack_) std::cerr << stack_->Logs();
  }
  User NewUser(const std::string& prefix, const std::string& device = {}) {
    User u{Connected(*stack_), 0, UniqueName(prefix)};
    auto reg = u.c.Register(u.name, "password1");
    EXPECT_TRUE(reg.ok()) << reg.Describe();
    u.uid = reg.value;
    EXPECT_TRUE(u.c.Login(u.name, "password1", device).ok());
    return u;
  }
  client::Client Device(const User& u, const std::string& device) {
    client::Client c = Connected(*stack_);
    EXPECT_TRUE(c.Login(u.name, "password1", device).ok());
    return c;
  }
  std::unique_ptr<Stack> stack_;
};

// The next DIRECTORY/FRIEND_EVENT push: (uid, event).
std::optional<std::pair<uint64_t, std::string>> WaitFriendEvent(client::Client& c,
                                                                milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    std::optional<client::Push> p = c.connection().WaitPush(left);
    if (!p) return std::nullopt;
    if (p->service == codec::ToWire(codec::Service::kDirectory) &&
        p->command == codec::directory::kFriendEvent) {
      return std::make_pair(p->body.GetUint("uid").value_or(0),
                            p->body.GetString("event").value_or(""));
    }
  }
}

TEST_F(ConsentTest, RequestShowsOnBothSidesAcceptMakesFriendsDeclineDoesNot) {
  Start();
  User a = NewUser("ca", "phone"), b = NewUser("cb"), c = NewUser("cc");
  client::Client a_laptop = Device(a, "laptop");

  auto asked = client::RequestFriend(a.c, b.uid);
  ASSERT_TRUE(asked.ok()) << asked.Describe();
  EXPECT_TRUE(asked.value);  // pending
  EXPECT_EQ(WaitFriendEvent(b.c, seconds(5)), std::make_pair(a.uid, std::string("request")));
  EXPECT_EQ(WaitFriendEvent(a_laptop, seconds(5)),
            std::make_pair(b.uid, std::string("request_sent")));
  EXPECT_EQ(client::RequestFriend(a.c, b.uid).code, C(Code::kConflict));

  // Pending on both sides, not friends yet, no presence yet.
  auto in = client::FriendRequests(b.c, true);
  ASSERT_TRUE(in.ok()) << in.Describe();
  ASSERT_EQ(in.value.size(), 1u);
  EXPECT_EQ(in.value[0].uid, a.uid);
  EXPECT_EQ(in.value[0].name, a.name);
  EXPECT_GT(in.value[0].ts, 0);
  auto out = client::FriendRequests(a.c, false);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out.value.size(), 1u);
  EXPECT_EQ(out.value[0].uid, b.uid);
  EXPECT_TRUE(client::FriendRequests(a.c, true).value.empty());
  EXPECT_TRUE(client::ListFriends(b.c).value.empty());
  EXPECT_EQ(client::IsOnline(a.c, b.uid).code, C(Code::kForbidden));

  // Only the one asked can accept.
  EXPECT_EQ(client::AcceptFriend(a.c, b.uid).code, C(Code::kNotFound));
  ASSERT_TRUE(client::AcceptFriend(b.c, a.uid).ok());
  EXPECT_EQ(WaitFriendEvent(a.c, seconds(5)), std::make_pair(b.uid, std::string("friends")));
  EXPECT_EQ(client::ListFriends(a.c).value.at(0).uid, b.uid);
  EXPECT_EQ(client::ListFriends(b.c).value.at(0).uid, a.uid);
  EXPECT_TRUE(client::FriendRequests(b.c, true).value.empty());
  auto online = client::IsOnline(a.c, b.uid);
  ASSERT_TRUE(online.ok()) << online.Describe();
  EXPECT_TRUE(online.value);

  // Declined: both told, nothing left, not friends.
  ASSERT_TRUE(client::RequestFriend(c.c, b.uid).ok());
  ASSERT_TRUE(client::DeclineFriend(b.c, c.uid).ok());
  EXPECT_EQ(WaitFriendEvent(c.c, seconds(5)), std::make_pair(b.uid, std::string("declined")));
  EXPECT_TRUE(client::FriendRequests(b.c, true).value.empty());
  EXPECT_EQ(client::ListFriends(c.c).value.size(), 0u);
  EXPECT_EQ(client::DeclineFriend(b.c, c.uid).code, C(Code::kNotFound));

  // Pages: three requests to c, two per page.
  std::vector<uint64_t> askers;
  for (int i = 0; i < 3; ++i) {
    User x = NewUser("cx");
    ASSERT_TRUE(client::RequestFriend(x.c, c.uid).ok());
    askers.push_back(x.uid);
  }
  codec::MapWriter w(1);
  w.Key("limit").Uint(2);
  client::Response page = c.c.Call(codec::ToWire(codec::Service::kDirectory),
                                   codec::directory::kFriendRequests, w.Finish());
  ASSERT_TRUE(page.ok()) << page.Describe();
  EXPECT_EQ(page.body.GetBool("more"), true);
  auto all = client::FriendRequests(c.c, true);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all.value.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(all.value[i].uid, askers[i]);
}

TEST_F(ConsentTest, BlockingStopsMessagesRequestsPresenceP2pAndTyping) {
  Start();
  User a = NewUser("ba"), b = NewUser("bb");
  ASSERT_TRUE(client::RequestFriend(a.c, b.uid).ok());
  ASSERT_TRUE(client::AcceptFriend(b.c, a.uid).ok());
  ASSERT_TRUE(client::SendToUser(a.c, b.uid, "before", "hi").ok());
  ASSERT_TRUE(client::IsOnline(a.c, b.uid).value);
  while (b.c.connection().WaitPush(milliseconds(300))) {
  }

  ASSERT_TRUE(client::Block(b.c, a.uid).ok());
  EXPECT_EQ(client::Block(b.c, a.uid).code, C(Code::kConflict));
  EXPECT_EQ(client::ListBlocked(b.c).value.at(0).uid, a.uid);
  // Friendship ended; a cannot write, ask again, see b online or get b's address.
  EXPECT_TRUE(client::ListFriends(a.c).value.empty());
  EXPECT_EQ(client::SendToUser(a.c, b.uid, "after", "hi?").code, C(Code::kForbidden));
  EXPECT_EQ(client::RequestFriend(a.c, b.uid).code, C(Code::kForbidden));
  EXPECT_EQ(client::IsOnline(a.c, b.uid).code, C(Code::kForbidden));
  EXPECT_EQ(client::PeerAddr(a.c, b.uid).code, C(Code::kForbidden));
  auto seen = client::GetUser(a.c, b.uid);
  ASSERT_TRUE(seen.ok());
  EXPECT_FALSE(seen.value.online);  // b is online, but not for a
  EXPECT_TRUE(client::GetUser(b.c, a.uid).value.online);
  // Typing reaches nobody; b receives nothing from a at all.
  const std::string conv =
      "d:" + std::to_string(std::min(a.uid, b.uid)) + ":" + std::to_string(std::max(a.uid, b.uid));
  ASSERT_TRUE(client::Typing(a.c, conv).ok());
  while (std::optional<client::Push> p = b.c.connection().WaitPush(milliseconds(700))) {
    EXPECT_FALSE(p->service == codec::ToWire(codec::Service::kMsg) &&
                 (p->command == codec::msg::kMessage || p->command == codec::msg::kTypingNotice))
        << "b got a push from a after blocking";
  }
  // b comes and goes: a (no longer a friend) hears nothing.
  {
    client::Client b2 = Device(b, "second");
    ASSERT_TRUE(b2.Logout().ok());
  }
  ASSERT_TRUE(b.c.Logout().ok());
  while (std::optional<client::Push> p = a.c.connection().WaitPush(milliseconds(700))) {
    EXPECT_NE(p->service, codec::ToWire(codec::Service::kPresence)) << "a saw b's presence";
  }

  // Unblocked: a may write and ask again.
  client::Client b_again = Device(b, "default");
  ASSERT_TRUE(client::Unblock(b_again, a.uid).ok());
  EXPECT_TRUE(client::SendToUser(a.c, b.uid, "after2", "hello again").ok());
  EXPECT_TRUE(client::RequestFriend(a.c, b.uid).ok());
}

TEST_F(ConsentTest, LegacyImmediateFriendsOnlyWhereTheDeploymentTurnsItOn) {
  Start({"--immediate-friends"});
  User a = NewUser("la"), b = NewUser("lb"), c = NewUser("lc");
  auto added = client::RequestFriend(a.c, b.uid);
  ASSERT_TRUE(added.ok()) << added.Describe();
  EXPECT_FALSE(added.value);  // friends at once
  EXPECT_EQ(client::ListFriends(b.c).value.at(0).uid, a.uid);
  // Presence about anyone, as before...
  EXPECT_TRUE(client::IsOnline(c.c, a.uid).value);
  // ...except who blocks the caller: offline, no address.
  ASSERT_TRUE(client::Block(a.c, c.uid).ok());
  auto hidden = client::IsOnline(c.c, a.uid);
  ASSERT_TRUE(hidden.ok()) << hidden.Describe();
  EXPECT_FALSE(hidden.value);
  auto addr = client::PeerAddr(c.c, a.uid);
  ASSERT_TRUE(addr.ok()) << addr.Describe();
  EXPECT_FALSE(addr.value.online);
  EXPECT_TRUE(addr.value.addrs.empty());
  EXPECT_EQ(client::RequestFriend(c.c, a.uid).code, C(Code::kForbidden));
}

}  // namespace
}  // namespace imbus::testing
