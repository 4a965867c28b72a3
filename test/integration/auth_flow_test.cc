// AUTH end to end: real broker, edge and actor against MariaDB, driven by the
// client library over TCP.
#include <gtest/gtest.h>

#include "codec/commands.h"
#include "test/integration/stack_util.h"

namespace imbus::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class AuthFlowTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new Stack();
    stack_->StartBroker();
    stack_->StartActor("auth", 2);
    stack_->StartEdge();
    ASSERT_TRUE(WaitWorkers(*stack_, "auth", 2)) << stack_->Logs();
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << stack_->Logs();
  }
  static Stack* stack_;
};
Stack* AuthFlowTest::stack_ = nullptr;

TEST_F(AuthFlowTest, RegisterLoginResumeLogout) {
  const std::string name = UniqueName("alice");
  client::Client c = Connected(*stack_);
  auto reg = c.Register(name, "secret-pw");
  ASSERT_TRUE(reg.ok()) << reg.Describe();
  EXPECT_GT(reg.value, 0u);

  // Login-only commands are refused before login.
  auto before = c.Logout();
  EXPECT_EQ(before.code, static_cast<int>(codec::Code::kUnauthenticated));

  auto login = c.Login(name, "secret-pw", "laptop");
  ASSERT_TRUE(login.ok()) << login.Describe();
  EXPECT_EQ(login.value.uid, reg.value);
  EXPECT_EQ(login.value.name, name);
  ASSERT_FALSE(login.value.token.empty());

  // A second connection resumes with the token, without the password.
  client::Client d = Connected(*stack_);
  auto resumed = d.Resume(login.value.token, "laptop");
  ASSERT_TRUE(resumed.ok()) << resumed.Describe();
  EXPECT_EQ(resumed.value.uid, reg.value);
  EXPECT_EQ(resumed.value.name, name);

  auto out = d.Logout();
  ASSERT_TRUE(out.ok()) << out.Describe();
  // Logged out: login-only commands are refused again, and the token is dead.
  EXPECT_EQ(d.Logout().code, static_cast<int>(codec::Code::kUnauthenticated));
  client::Client e = Connected(*stack_);
  EXPECT_EQ(e.Resume(login.value.token, "laptop").code,
            static_cast<int>(codec::Code::kUnauthenticated));
}

TEST_F(AuthFlowTest, LoginByUid) {
  const std::string name = UniqueName("byuid");
  client::Client c = Connected(*stack_);
  auto reg = c.Register(name, "pw123456");
  ASSERT_TRUE(reg.ok()) << reg.Describe();
  client::LoginRequest req;
  req.uid = reg.value;
  req.password = "pw123456";
  auto login = c.Login(req);
  ASSERT_TRUE(login.ok()) << login.Describe();
  EXPECT_EQ(login.value.name, name);
}

TEST_F(AuthFlowTest, WrongPasswordAndUnknownUser) {
  const std::string name = UniqueName("bob");
  client::Client c = Connected(*stack_);
  ASSERT_TRUE(c.Register(name, "right-password").ok());
  auto wrong = c.Login(name, "wrong-password");
  EXPECT_EQ(wrong.code, static_cast<int>(codec::Code::kUnauthenticated));
  EXPECT_FALSE(wrong.error.empty());
  auto unknown = c.Login(UniqueName("nobody"), "whatever1");
  EXPECT_EQ(unknown.code, static_cast<int>(codec::Code::kUnauthenticated));
  // The connection is still usable and the right password works.
  EXPECT_TRUE(c.Login(name, "right-password").ok());
}

TEST_F(AuthFlowTest, DuplicateNameIsConflictCaseInsensitive) {
  const std::string name = UniqueName("carol");
  client::Client c = Connected(*stack_);
  ASSERT_TRUE(c.Register(name, "password1").ok());
  EXPECT_EQ(c.Register(name, "password2").code, static_cast<int>(codec::Code::kConflict));
  std::string upper = name;
  for (char& ch : upper) ch = static_cast<char>(toupper(static_cast<unsigned char>(ch)));
  EXPECT_EQ(c.Register(upper, "password2").code, static_cast<int>(codec::Code::kConflict));
}

TEST_F(AuthFlowTest, BadRequestsAreAnswered) {
  client::Client c = Connected(*stack_);
  EXPECT_EQ(c.Register("bad name!", "password1").code, static_cast<int>(codec::Code::kBadRequest));
  EXPECT_EQ(c.Register(UniqueName("short"), "pw").code, static_cast<int>(codec::Code::kBadRequest));
  // A field of the wrong type.
  codec::MapWriter w(2);
  w.Key("name").Uint(5);
  w.Key("password").Str("password1");
  auto r = c.Call(codec::ToWire(codec::Service::kAuth), codec::auth::kRegister, w.Finish());
  EXPECT_EQ(r.code, static_cast<int>(codec::Code::kBadRequest));
  // Unknown command and service.
  EXPECT_EQ(c.Call(codec::ToWire(codec::Service::kAuth), 77, codec::EmptyBody()).code,
            static_cast<int>(codec::Code::kUnsupported));
  EXPECT_EQ(c.Call(99, 1, codec::EmptyBody()).code, static_cast<int>(codec::Code::kUnsupported));
}

TEST_F(AuthFlowTest, DeleteAccountThenLoginFails) {
  const std::string name = UniqueName("dave");
  client::Client c = Connected(*stack_);
  auto reg = c.Register(name, "password1");
  ASSERT_TRUE(reg.ok());
  client::Client other = Connected(*stack_);
  ASSERT_TRUE(other.Login(name, "password1", "tablet").ok());

  EXPECT_EQ(c.DeleteAccount(reg.value, "not-the-password").code,
            static_cast<int>(codec::Code::kUnauthenticated));
  auto del = c.DeleteAccount(reg.value, "password1");
  ASSERT_TRUE(del.ok()) << del.Describe();

  // Every session of the deleted user is kicked.
  auto push = other.connection().WaitPush(seconds(5));
  ASSERT_TRUE(push.has_value());
  EXPECT_EQ(push->service, codec::ToWire(codec::Service::kAuth));
  EXPECT_EQ(push->command, codec::auth::kKicked);

  EXPECT_EQ(c.Login(name, "password1").code, static_cast<int>(codec::Code::kUnauthenticated));
  // The name is free again, and the new account gets a new uid.
  auto again = c.Register(name, "password2");
  ASSERT_TRUE(again.ok()) << again.Describe();
  EXPECT_GT(again.value, reg.value);
}

TEST_F(AuthFlowTest, SameDeviceLoginKicksTheFirstOtherDevicesStay) {
  const std::string name = UniqueName("erin");
  client::Client setup = Connected(*stack_);
  ASSERT_TRUE(setup.Register(name, "password1").ok());

  client::Client phone1 = Connected(*stack_);
  client::Client laptop = Connected(*stack_);
  ASSERT_TRUE(phone1.Login(name, "password1", "phone").ok());
  ASSERT_TRUE(laptop.Login(name, "password1", "laptop").ok());

  client::Client phone2 = Connected(*stack_);
  ASSERT_TRUE(phone2.Login(name, "password1", "phone").ok());

  // The first phone gets KICKED, then the edge closes it.
  auto push = phone1.connection().WaitPush(seconds(5));
  ASSERT_TRUE(push.has_value());
  EXPECT_EQ(push->service, codec::ToWire(codec::Service::kAuth));
  EXPECT_EQ(push->command, codec::auth::kKicked);
  EXPECT_TRUE(push->body.GetString("reason").has_value());
  auto after = phone1.Ping();
  EXPECT_FALSE(after.ok());
  EXPECT_TRUE(phone1.connection().closed());

  // The laptop and the new phone are untouched and still logged in.
  EXPECT_FALSE(laptop.connection().PollPushes().has_value());
  EXPECT_TRUE(laptop.Ping().ok());
  EXPECT_TRUE(laptop.Logout().ok());  // login-only: proves it is still logged in
  EXPECT_TRUE(phone2.Ping().ok());
  EXPECT_FALSE(phone2.connection().PollPushes().has_value());
}

}  // namespace
}  // namespace imbus::testing
