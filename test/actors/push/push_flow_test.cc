// Offline push end to end (docs/deploy.md "Offline push"): real broker, edge, msg
// and push actors against MariaDB, a FakeGateway on 127.0.0.1 as the push gateway.
// Each message to an offline user with a device token yields one notification per
// idempotency key, accepted by the gateway, however often it first fails (with
// several push workers claiming from one outbox), and
// through a kill -9 of the push worker mid-delivery and a MariaDB restart; online
// recipients get none; every body's signature verifies; a gateway that never
// answers ends in a dead letter.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <gtest/gtest.h>

#include <csignal>
#include <regex>
#include <set>

#include "client/directory_api.h"
#include "client/msg_api.h"
#include "client/presence_api.h"
#include "codec/commands.h"
#include "test/actors/push/push_gateway.h"
#include "test/integration/stack_db.h"
#include "test/integration/metrics_scrape.h"
#include "test/integration/stack_util.h"
#include "test/support/mariadb.h"

namespace imbus::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr uint16_t kPush = codec::ToWire(codec::Service::kPush);
const char* const kSecret = "gateway-shared-secret";

std::string Hex(const unsigned char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

// The signature as a gateway would check it: OpenSSL's HMAC, not ours.
std::string ExpectedSignature(const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kSecret, static_cast<int>(std::strlen(kSecret)),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  return "sha256=" + Hex(mac, len);
}

std::string Field(const std::string& json, const std::string& name) {
  std::smatch m;
  const std::regex re("\"" + name + "\":(\"(?:[^\"\\\\]|\\\\.)*\"|null|[0-9]+)");
  return std::regex_search(json, m, re) ? m[1].str() : std::string("<none>");
}

std::string Key(uint64_t uid, const std::string& conv, uint64_t seq) {
  return std::to_string(uid) + "/" + conv + "/" + std::to_string(seq);
}

struct User {
  client::Client c;
  uint64_t uid = 0;
  std::string name;
};

class PushTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && stack_) std::cerr << stack_->Logs();
  }

  // Broker, edge, an actor for auth/directory/presence/msg and one for push (its
  // delivery threads POST to the gateway).
  void StartStack(std::vector<std::string> push_flags, const DbConfig* db = nullptr,
                  int push_actors = 1) {
    StackOptions o;
    o.db = db;
    // --immediate-friends: GoOffline watches strangers with IS_ONLINE, which otherwise
    // needs friendship.
    o.actor_args = {"--push-url",     gateway_.url(), "--push-secret",      kSecret,
                    "--push-poll-ms", "50",           "--immediate-friends"};
    o.actor_args.insert(o.actor_args.end(), push_flags.begin(), push_flags.end());
    stack_ = std::make_unique<Stack>(o);
    stack_->StartBroker();
    stack_->StartEdge();
    stack_->StartActor("auth,directory,presence,msg", 2);
    for (int i = 0; i < push_actors; ++i) push_actor_ = stack_->StartActor("push");
    ASSERT_TRUE(WaitWorkers(*stack_, "msg", 2));
    ASSERT_TRUE(WaitWorkers(*stack_, "push", static_cast<size_t>(push_actors)));
  }

  User NewUser(const std::string& prefix) {
    User u{Connected(*stack_), 0, UniqueName(prefix)};
    auto r = u.c.Register(u.name, "password1");
    EXPECT_TRUE(r.ok()) << r.Describe();
    u.uid = r.value;
    auto s = u.c.Login(u.name, "password1");
    EXPECT_TRUE(s.ok()) << s.Describe();
    return u;
  }

  static void RegisterDevice(User& u, const std::string& token) {
    codec::MapWriter w(2);
    w.Key("platform").Str("fcm");
    w.Key("token").Str(token);
    auto r = u.c.Call(kPush, codec::push::kRegisterDevice, w.Finish());
    ASSERT_TRUE(r.ok()) << r.Describe();
  }

  // Logs `u` out and closes its connection; waits until `observer` sees it offline.
  static void GoOffline(User& u, User& observer) {
    ASSERT_TRUE(u.c.Logout().ok());
    u.c = client::Client();
    const auto deadline = std::chrono::steady_clock::now() + seconds(10);
    for (;;) {
      auto r = client::IsOnline(observer.c, u.uid);
      ASSERT_TRUE(r.ok()) << r.Describe();
      if (!r.value) return;
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << u.name << " stays online";
      std::this_thread::sleep_for(milliseconds(50));
    }
  }

  // Sends `text` from `from` to `to`, again with the same cmid while the stack is
  // UNAVAILABLE (a MariaDB restart); returns the message's idempotency key for `to`.
  static std::string Send(User& from, uint64_t to, const std::string& text) {
    const std::string cmid = client::NewCmid();
    for (int i = 0; i < 100; ++i) {
      auto r = client::SendToUser(from.c, to, cmid, text);
      if (r.ok()) return Key(to, r.value.conv, r.value.seq);
      std::this_thread::sleep_for(milliseconds(200));
    }
    ADD_FAILURE() << "send failed for good";
    return {};
  }

  int64_t DbCount(const std::string& sql, const DbConfig& server = SharedMariaDb()) {
    actors::Db db = StackDb(*stack_, server);
    return db.Query(sql).rows.at(0).Int(0).value_or(-1);
  }

  FakeGateway gateway_;
  std::unique_ptr<Stack> stack_;
  size_t push_actor_ = 0;
};

TEST_F(PushTest, OfflineRecipientsGetOneAcceptedNotificationPerMessageOnlineOnesNone) {
  gateway_.set_fail_first(5);  // the first five POSTs get 503
  // Two push processes of two delivery threads each claim from the same outbox.
  ASSERT_NO_FATAL_FAILURE(StartStack(
      {"--push-backoff-ms", "50", "--push-batch", "2", "--push-threads", "2"}, nullptr, 2));
  User alice = NewUser("alice");
  User bob = NewUser("bob");      // offline, full preview
  User carol = NewUser("carol");  // stays online: no notification
  User dave = NewUser("dave");    // offline, no preview
  ASSERT_NO_FATAL_FAILURE(RegisterDevice(bob, "bob-phone-token"));
  ASSERT_NO_FATAL_FAILURE(RegisterDevice(carol, "carol-phone-token"));
  ASSERT_NO_FATAL_FAILURE(RegisterDevice(dave, "dave-phone-token"));
  {
    codec::MapWriter w(1);
    w.Key("preview").Bool(false);
    auto r = dave.c.Call(kPush, codec::push::kSettings, w.Finish());
    ASSERT_TRUE(r.ok()) << r.Describe();
    EXPECT_EQ(r.body.GetBool("preview"), false);
  }
  auto gid = client::CreateGroup(alice.c, UniqueName("team"));
  ASSERT_TRUE(gid.ok()) << gid.Describe();
  ASSERT_TRUE(client::JoinGroup(bob.c, gid.value).ok());
  ASSERT_TRUE(client::JoinGroup(carol.c, gid.value).ok());
  ASSERT_NO_FATAL_FAILURE(GoOffline(bob, alice));
  ASSERT_NO_FATAL_FAILURE(GoOffline(dave, alice));

  std::set<std::string> unexpected;  // carol's: she is online
  unexpected.insert(Send(alice, carol.uid, "to carol, who is online"));
  std::set<std::string> keys;
  std::map<std::string, std::string> text_of;
  for (int i = 0; i < 10; ++i) {
    const std::string text = "hello \"bob\" #" + std::to_string(i) + " \xc3\xa9";
    const std::string key = Send(alice, bob.uid, text);
    keys.insert(key);
    text_of[key] = text;
  }
  const std::string dave_key = Send(alice, dave.uid, "secret for dave");
  keys.insert(dave_key);
  auto g = client::SendToGroup(alice.c, gid.value, client::NewCmid(), "to the team");
  ASSERT_TRUE(g.ok()) << g.Describe();
  const std::string group_key = Key(bob.uid, g.value.conv, g.value.seq);
  keys.insert(group_key);  // bob's; carol is online
  unexpected.insert(Key(carol.uid, g.value.conv, g.value.seq));
  ASSERT_EQ(keys.size(), 12u);

  ASSERT_TRUE(gateway_.WaitAccepted(keys, seconds(30)))
      << gateway_.accepted().size() << " of 12 accepted";
  std::this_thread::sleep_for(milliseconds(300));  // anything more would show by now
  const std::map<std::string, int> accepted = gateway_.accepted();
  EXPECT_EQ(accepted.size(), keys.size()) << "a notification nobody asked for";
  for (const auto& [key, count] : accepted) {
    EXPECT_TRUE(keys.count(key)) << "unexpected notification " << key;
    EXPECT_EQ(count, 1) << key << " accepted more than once";
    EXPECT_EQ(unexpected.count(key), 0u) << "an online recipient was notified: " << key;
  }
  // The failed tries were tried again with the same key and a higher attempt.
  const std::vector<FakeGateway::Post> posts = gateway_.posts();
  EXPECT_EQ(posts.size(), keys.size() + 5);
  std::map<std::string, int> tries;
  for (const FakeGateway::Post& p : posts) {
    EXPECT_EQ(p.signature, ExpectedSignature(p.body)) << p.body;
    EXPECT_EQ(p.attempt, std::to_string(++tries[p.key])) << p.key;
    EXPECT_EQ(Field(p.body, "id"), "\"" + p.key + "\"");
    EXPECT_EQ(Field(p.body, "sender"), std::to_string(alice.uid));
    EXPECT_EQ(Field(p.body, "sender_name"), "\"" + alice.name + "\"");
    if (text_of.count(p.key)) {
      EXPECT_EQ(Field(p.body, "uid"), std::to_string(bob.uid));
      EXPECT_NE(p.body.find("\"token\":\"bob-phone-token\""), std::string::npos) << p.body;
      std::string escaped = text_of[p.key];
      escaped.replace(escaped.find('"'), 1, "\\\"");
      escaped.replace(escaped.find('"', escaped.find("bob")), 1, "\\\"");
      EXPECT_EQ(Field(p.body, "preview"), "\"" + escaped + "\"") << p.body;
    }
  }
  int retried = 0;
  for (const auto& [key, n] : tries) retried += n - 1;
  EXPECT_EQ(retried, 5);
  for (const FakeGateway::Post& p : posts) {
    if (p.key == dave_key) {
      EXPECT_EQ(Field(p.body, "preview"), "null") << p.body;
    }
    if (p.key == group_key) {
      EXPECT_EQ(Field(p.body, "gid"), std::to_string(gid.value)) << p.body;
      EXPECT_EQ(Field(p.body, "preview"), "\"to the team\"") << p.body;
    }
  }
  EXPECT_EQ(DbCount("SELECT COUNT(*) FROM push_outbox"), 0) << "delivered rows are deleted";

  // Unregistered: bob's next message waits for no one.
  bob = NewUser("bob2");
  const size_t before = gateway_.posts().size();
  {
    codec::MapWriter w(2);
    w.Key("platform").Str("fcm");
    w.Key("token").Str("carol-phone-token");  // not bob2's: nothing removed
    auto r = bob.c.Call(kPush, codec::push::kUnregisterDevice, w.Finish());
    ASSERT_TRUE(r.ok()) << r.Describe();
    EXPECT_EQ(r.body.GetBool("removed"), false);
  }
  User dave2{Connected(*stack_), dave.uid, dave.name};
  ASSERT_TRUE(dave2.c.Login(dave.name, "password1").ok());
  {
    codec::MapWriter w(2);
    w.Key("platform").Str("fcm");
    w.Key("token").Str("dave-phone-token");
    auto r = dave2.c.Call(kPush, codec::push::kUnregisterDevice, w.Finish());
    ASSERT_TRUE(r.ok()) << r.Describe();
    EXPECT_EQ(r.body.GetBool("removed"), true);
  }
  ASSERT_NO_FATAL_FAILURE(GoOffline(dave2, alice));
  Send(alice, dave.uid, "nobody's phone hears this");
  EXPECT_EQ(DbCount("SELECT COUNT(*) FROM push_outbox"), 0) << "no device, no notification";
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(gateway_.posts().size(), before);
}

TEST_F(PushTest, KillingThePushWorkerMidDeliveryAndRestartingMariaDbLoseNone) {
  MariaDbServer server;
  ASSERT_TRUE(server.Start());
  const DbConfig db = server.config();
  gateway_.set_delay(milliseconds(150));  // each POST is answered after 150 ms
  ASSERT_NO_FATAL_FAILURE(StartStack(
      {"--push-backoff-ms", "100", "--push-timeout-ms", "1000", "--push-batch", "2"}, &db));
  User alice = NewUser("alice");
  User bob = NewUser("bob");
  ASSERT_NO_FATAL_FAILURE(RegisterDevice(bob, "bob-phone-token"));
  ASSERT_NO_FATAL_FAILURE(GoOffline(bob, alice));

  std::set<std::string> keys;
  for (int i = 0; i < 16; ++i) keys.insert(Send(alice, bob.uid, "m" + std::to_string(i)));

  // kill -9 while a POST is out (read by the gateway, not answered yet).
  ASSERT_TRUE(gateway_.WaitPosts(3, seconds(20)));
  stack_->actor(push_actor_).Kill();
  const std::string interrupted = gateway_.posts().back().key;
  push_actor_ = stack_->StartActor("push");

  // MariaDB goes down hard while deliveries go on, and comes back on its data.
  ASSERT_TRUE(gateway_.WaitPosts(8, seconds(30)));
  server.Kill();
  std::this_thread::sleep_for(milliseconds(1000));
  ASSERT_TRUE(server.Start());
  for (int i = 0; i < 4; ++i) keys.insert(Send(alice, bob.uid, "after " + std::to_string(i)));
  ASSERT_EQ(keys.size(), 20u);

  EXPECT_TRUE(gateway_.WaitAccepted(keys, seconds(60)))
      << gateway_.accepted().size() << " of 20 accepted";
  const std::map<std::string, int> accepted = gateway_.accepted();
  EXPECT_EQ(accepted.size(), keys.size());
  for (const auto& [key, count] : accepted) EXPECT_TRUE(keys.count(key)) << key;
  EXPECT_TRUE(accepted.count(interrupted)) << "the POST cut by kill -9 was never redone";
  std::cerr << "push after kill -9 and MariaDB restart: " << gateway_.posts().size() << " POSTs, "
            << accepted.size() << " keys accepted, " << gateway_.duplicates()
            << " accepted again (at least once)\n";
  // The last rows are deleted right after their answers.
  int64_t left = -1;
  for (int i = 0; i < 50 && left != 0; ++i) {
    left = DbCount("SELECT COUNT(*) FROM push_outbox", db);
    if (left != 0) std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(left, 0);
}

TEST_F(PushTest, GatewayThatNeverAnswersEndsInDeadLetter) {
  gateway_.set_silent(true);
  ASSERT_NO_FATAL_FAILURE(StartStack({"--push-backoff-ms", "50", "--push-timeout-ms", "300",
                                      "--push-max-tries", "3", "--metrics-listen", "127.0.0.1:0"}));
  User alice = NewUser("alice");
  User bob = NewUser("bob");
  ASSERT_NO_FATAL_FAILURE(RegisterDevice(bob, "bob-phone-token"));
  ASSERT_NO_FATAL_FAILURE(GoOffline(bob, alice));
  const std::string key = Send(alice, bob.uid, "into the void");

  Process& push = stack_->actor(push_actor_);
  ASSERT_TRUE(push.WaitForLog("push: dead letter " + key + " after 3 tries", seconds(20)))
      << push.Log();
  const std::vector<FakeGateway::Post> posts = gateway_.posts();
  ASSERT_EQ(posts.size(), 3u);
  for (size_t i = 0; i < posts.size(); ++i) {
    EXPECT_EQ(posts[i].key, key);
    EXPECT_EQ(posts[i].attempt, std::to_string(i + 1));
    EXPECT_EQ(posts[i].signature, ExpectedSignature(posts[i].body));
  }
  EXPECT_EQ(DbCount("SELECT COUNT(*) FROM push_outbox WHERE state = 2 AND tries = 3"), 1);
  // The counters on the push worker's /metrics ...
  const int port = MetricsPort(push);
  ASSERT_NE(port, 0) << push.Log();
  const std::optional<std::string> text = HttpGetMetrics(port);
  ASSERT_TRUE(text);
  const Scrape scrape = ParseMetrics(*text);
  EXPECT_EQ(scrape.at("imbus_push_notifications_total{result=\"dead_letter\"}"), 1) << *text;
  EXPECT_EQ(scrape.at("imbus_push_notifications_total{result=\"retried\"}"), 2) << *text;
  EXPECT_EQ(scrape.at("imbus_push_notifications_total{result=\"delivered\"}"), 0) << *text;
  // ... and as the push worker logs them when it stops.
  push.Stop();
  EXPECT_NE(push.Log().find("push: delivered 0 retried 2 dead_letters 1 dropped 0"),
            std::string::npos)
      << push.Log();
}

}  // namespace
}  // namespace imbus::testing
