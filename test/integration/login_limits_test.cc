// Guessing passwords around the limits, and client input at AUTH, against the real
// stack (two edges, auth and directory actors, MariaDB): the per-address backoff is
// not reset by a login to another account; DELETE_ACCOUNT is counted and limited like
// LOGIN; guesses at one account spread over addresses and edges are limited per
// account; names compare exactly; bad strings are BAD_REQUEST, never INTERNAL; a
// device keeps one token. Clients bound to 127.0.0.x play other machines.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>

#include "actors/db/db.h"
#include "client/directory_api.h"
#include "codec/body.h"
#include "codec/commands.h"
#include "test/integration/stack_util.h"
#include "test/msg/msg_test_util.h"

namespace imbus::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
constexpr const char* kPassword = "password1";
constexpr const char* kWrong = "wrong-password";
constexpr int kUnauth = static_cast<int>(codec::Code::kUnauthenticated);
constexpr int kLimited = static_cast<int>(codec::Code::kRateLimited);
constexpr int kBad = static_cast<int>(codec::Code::kBadRequest);
constexpr int kNotFound = static_cast<int>(codec::Code::kNotFound);
const uint16_t kAuth = codec::ToWire(codec::Service::kAuth);

class LoginLimitsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    StackOptions o;
    // Per address: 5 free failures, then 500 ms doubling. Per account: 5 free, then
    // 400 ms doubling (told apart by their error texts).
    o.edge_args = {"--login-free-failures",  "5",   "--login-backoff-ms", "500",
                   "--login-backoff-max-ms", "5000"};
    o.actor_args = {"--account-free-failures",  "5",   "--account-backoff-ms", "400",
                    "--account-backoff-max-ms", "4000"};
    stack_ = new Stack(o);
    stack_->StartBroker();
    stack_->StartActor("auth,directory", 2);
    stack_->StartEdge();
    stack_->StartEdge();
    ASSERT_TRUE(WaitWorkers(*stack_, "auth", 2)) << stack_->Logs();
    ASSERT_TRUE(WaitWorkers(*stack_, "directory", 2)) << stack_->Logs();
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << stack_->Logs();
  }

  // A client on edge `edge` whose connection comes from `source` (127.0.0.x).
  static client::Client From(const std::string& source, size_t edge = 0) {
    return imbus::testing::From(*stack_, source, edge);
  }

  static uint64_t Register(const std::string& name) {
    client::Client c = From("127.0.0.2");
    auto r = c.Register(name, kPassword);
    EXPECT_EQ(r.code, 0) << r.Describe();
    return r.value;
  }

  static client::Response RawLogin(client::Client& c, const std::string& name,
                                   const std::string& password,
                                   const std::string& device = "default") {
    codec::MapWriter w(3);
    w.Key("name").Str(name);
    w.Key("password").Str(password);
    w.Key("device").Str(device);
    return c.Call(kAuth, codec::auth::kLogin, w.Finish());
  }

  static client::Response RawDelete(client::Client& c, uint64_t uid, const std::string& password) {
    codec::MapWriter w(2);
    w.Key("uid").Uint(uid);
    w.Key("password").Str(password);
    return c.Call(kAuth, codec::auth::kDeleteAccount, w.Finish());
  }

  static int64_t RetryMs(const client::Response& r) {
    return r.body.GetInt("retry_ms").value_or(-1);
  }

  static Stack* stack_;
};

Stack* LoginLimitsTest::stack_ = nullptr;

// The bypass: four guesses at someone else's account, then a login to one's own,
// again and again. The own logins do not reset the address: it is refused after
// six failures, as it would be without them.
TEST_F(LoginLimitsTest, OwnLoginsBetweenGuessesDoNotResetTheAddress) {
  const std::string me = UniqueName("ll_me");
  Register(me);
  std::vector<std::string> victims;
  for (int i = 0; i < 3; ++i) {
    victims.push_back(UniqueName("ll_victim"));
    Register(victims.back());
  }
  client::Client attacker = From("127.0.0.20");
  int guesses = 0;
  client::Response refused;
  for (const std::string& victim : victims) {  // 4 each: no account reaches its limit
    for (int i = 0; i < 4 && refused.code != kLimited; ++i) {
      client::Response r = RawLogin(attacker, victim, kWrong);
      if (r.code == kLimited) {
        refused = std::move(r);
      } else {
        ASSERT_EQ(r.code, kUnauth) << r.Describe();
        ++guesses;
      }
    }
    if (refused.code == kLimited) break;
    client::Response own = RawLogin(attacker, me, kPassword);
    if (own.code == kLimited) {
      refused = std::move(own);
      break;
    }
    ASSERT_EQ(own.code, 0) << own.Describe();
  }
  ASSERT_EQ(refused.code, kLimited) << "no refusal after " << guesses << " guesses";
  EXPECT_EQ(guesses, 6);  // 5 free, the 6th reserves the first wait
  EXPECT_NE(refused.error.find("address"), std::string::npos) << refused.error;
  EXPECT_GT(RetryMs(refused), 0);
  EXPECT_LE(RetryMs(refused), 500);
  // The own account is refused too while the address waits.
  EXPECT_EQ(RawLogin(attacker, me, kPassword).code, kLimited);
}

// DELETE_ACCOUNT with guessed passwords is counted and limited, per address at the
// edge and per account at auth; the account survives and its owner can log in after
// the account's wait.
TEST_F(LoginLimitsTest, DeleteAccountGuessesAreLimited) {
  const std::string victim = UniqueName("ll_del");
  const uint64_t uid = Register(victim);
  client::Client attacker = From("127.0.0.21");
  int answered = 0;
  int limited = 0;
  for (int i = 0; i < 30; ++i) {
    client::Response r = RawDelete(attacker, uid, kWrong);
    if (r.code == kLimited) {
      ++limited;
    } else {
      ASSERT_EQ(r.code, kUnauth) << r.Describe();
      ++answered;
    }
  }
  // 5 free, the 6th reserves the first wait (one more only if the loop outlasted it).
  EXPECT_GE(answered, 6);
  EXPECT_LE(answered, 7) << "30 guesses in a row: only 6 reach a password check";
  EXPECT_EQ(answered + limited, 30);
  // From a fresh address: the account itself waits (its 6 failures), then the owner
  // gets in; the account was not deleted.
  client::Client owner = From("127.0.0.22");
  client::Response early = RawLogin(owner, victim, kPassword);
  if (early.code == kLimited) {
    EXPECT_NE(early.error.find("account"), std::string::npos) << early.error;
    std::this_thread::sleep_for(milliseconds(RetryMs(early)));
  }
  client::Response ok = RawLogin(owner, victim, kPassword);
  ASSERT_EQ(ok.code, 0) << ok.Describe();
  EXPECT_EQ(ok.body.GetUint("uid"), uid);
}

// Guesses at one account from eight addresses over two edges (one or two each, under
// every address's limit) are limited per account; the owner waits it out.
TEST_F(LoginLimitsTest, GuessesSpreadOverAddressesAndEdgesAreLimitedPerAccount) {
  const std::string victim = UniqueName("ll_spread");
  const uint64_t uid = Register(victim);
  int answered = 0;
  client::Response refused;
  for (int i = 0; i < 8 && refused.code != kLimited; ++i) {
    client::Client c = From("127.0.0." + std::to_string(30 + i), static_cast<size_t>(i % 2));
    // LOGIN by name and DELETE_ACCOUNT by uid count alike.
    client::Response r = i % 2 == 0 ? RawLogin(c, victim, kWrong) : RawDelete(c, uid, kWrong);
    if (r.code == kLimited) {
      refused = std::move(r);
    } else {
      ASSERT_EQ(r.code, kUnauth) << r.Describe();
      ++answered;
    }
  }
  ASSERT_EQ(refused.code, kLimited);
  EXPECT_EQ(answered, 6);
  EXPECT_NE(refused.error.find("account"), std::string::npos) << refused.error;
  EXPECT_GT(RetryMs(refused), 0);
  EXPECT_LE(RetryMs(refused), 400);
  // The right password, from yet another address, waits too; then it works, and a
  // success clears the account's count.
  client::Client owner = From("127.0.0.40", 1);
  client::Response early = RawLogin(owner, victim, kPassword);
  ASSERT_EQ(early.code, kLimited) << early.Describe();
  std::this_thread::sleep_for(milliseconds(RetryMs(early)));
  ASSERT_EQ(RawLogin(owner, victim, kPassword).code, 0);
  client::Client later = From("127.0.0.41");
  EXPECT_EQ(RawLogin(later, victim, kWrong).code, kUnauth);
  EXPECT_EQ(RawLogin(later, victim, kPassword).code, 0);
}

// Names that no account can have, or that differ from one in case or trailing
// spaces, are wrong names (LOGIN: UNAUTHENTICATED; GET_USER: NOT_FOUND), never
// INTERNAL; a device that is not UTF-8 is BAD_REQUEST before the password is checked.
TEST_F(LoginLimitsTest, NamesCompareExactlyAndBadStringsAreNotInternal) {
  const std::string name = UniqueName("Ll_Name");
  const uint64_t uid = Register(name);
  std::string lower = name;
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  int source = 51;  // each from an address of its own: no address reaches its limit
  for (const std::string& guess : {name + " ", name + "  ", lower, std::string("Zo\xc3\xab"),
                                   std::string("\xe5\xbc\xa0"), std::string("bad\xff")}) {
    client::Client g = From("127.0.0." + std::to_string(source++));
    client::Response r = RawLogin(g, guess, kPassword);
    EXPECT_EQ(r.code, kUnauth) << "'" << guess << "': " << r.Describe();
  }
  client::Client c = From("127.0.0.50");
  client::Response dev = RawLogin(c, name, kPassword, "ph\xff\xfeone");
  EXPECT_EQ(dev.code, kBad) << dev.Describe();
  client::Response ok = RawLogin(c, name, kPassword, "t\xc3\xa9l\xc3\xa9phone");
  ASSERT_EQ(ok.code, 0) << ok.Describe();
  for (const std::string& guess :
       {name + " ", lower, std::string("Zo\xc3\xab"), std::string("\xe5\xbc\xa0")}) {
    auto r = client::GetUserByName(c, guess);
    EXPECT_EQ(r.code, kNotFound) << "'" << guess << "': " << r.Describe();
  }
  auto found = client::GetUserByName(c, name);
  ASSERT_TRUE(found.ok()) << found.Describe();
  EXPECT_EQ(found.value.uid, uid);
  const std::string logs = stack_->Logs();
  EXPECT_EQ(logs.find("Illegal mix of collations"), std::string::npos);
  EXPECT_EQ(logs.find("Incorrect string value"), std::string::npos);
}

// One token per (user, device): many logins on one device leave one token, and only
// the newest RESUMEs; two devices keep two.
TEST_F(LoginLimitsTest, ADeviceKeepsOneToken) {
  const std::string name = UniqueName("ll_tok");
  const uint64_t uid = Register(name);
  std::vector<std::string> tokens;
  for (int i = 0; i < 20; ++i) {
    client::Client c = From("127.0.0.60");
    auto r = c.Login(name, kPassword, "phone");
    ASSERT_TRUE(r.ok()) << r.Describe();
    tokens.push_back(r.value.token);
  }
  client::Client laptop = From("127.0.0.60");
  auto l = laptop.Login(name, kPassword, "laptop");
  ASSERT_TRUE(l.ok()) << l.Describe();
  actors::Db db = StackDb(*stack_, SharedMariaDb());
  EXPECT_EQ(db.Query("SELECT COUNT(*) FROM tokens WHERE uid = ?", {uid}).rows.at(0).Uint(0), 2u);
  client::Client r = From("127.0.0.61");
  EXPECT_EQ(r.Resume(tokens.front(), "phone").code, kUnauth);
  EXPECT_EQ(r.Resume(tokens[18], "phone").code, kUnauth);
  EXPECT_TRUE(r.Resume(tokens.back(), "phone").ok());
  client::Client r2 = From("127.0.0.61");
  EXPECT_TRUE(r2.Resume(l.value.token, "laptop").ok());
}

}  // namespace
}  // namespace imbus::testing
