#include "test/actors/auth/auth_cases.h"

#include <vector>

#include "codec/commands.h"

namespace imbus::actors::testing {
namespace {

using codec::Code;
namespace auth = codec::auth;

int CodeOf(Code c) { return static_cast<int>(c); }

}  // namespace

std::string NamePassword(const std::string& name, const std::string& password) {
  codec::MapWriter w(2);
  w.Key("name").Str(name);
  w.Key("password").Str(password);
  return w.Finish();
}

void AuthCasesTest::SetUp() {
  AuthService::Options o;
  o.pwhash_ops = 1;  // lowest cost: tests only
  o.pwhash_mem = 8192;
  o.token_ttl_s = 3600;
  o.now_ms = [this] { return now_ms_; };
  dispatcher_.Add(codec::ToWire(codec::Service::kAuth),
                  std::make_unique<AuthService>(GetParam().make(), o));
}

CallResult AuthCasesTest::Call(uint16_t command, const std::string& body, uint64_t conn_uid,
                               const std::string& conn_device) {
  codec::RequestMeta meta;
  meta.rid = 42;
  meta.conn = 7;
  meta.seq = 9;
  meta.service = codec::ToWire(codec::Service::kAuth);
  meta.command = command;
  meta.uid = conn_uid;
  meta.device = conn_device;
  meta.peer_host = "203.0.113.5";
  meta.peer_port = 40001;
  std::vector<OutMessage> out;
  dispatcher_.HandleRequest(codec::PackMeta(meta), body, &out);
  CallResult r;
  EXPECT_EQ(out.size(), 1u);
  if (out.empty()) return r;
  EXPECT_EQ(out.back().type, codec::BusType::kReply);
  EXPECT_TRUE(codec::UnpackMeta(out.back().meta, &r.meta));
  EXPECT_EQ(r.meta.rid, 42u);
  EXPECT_EQ(r.meta.conn, 7u);
  EXPECT_EQ(r.meta.seq, 9u);
  EXPECT_EQ(r.meta.command, command);
  std::string err;
  EXPECT_TRUE(codec::Body::Parse(out.back().body, &r.body, &err)) << err;
  r.code = static_cast<int>(r.body.GetInt("code").value_or(-1));
  r.error = r.body.GetString("error").value_or("");
  return r;
}

uint64_t AuthCasesTest::RegisterOk(const std::string& name, const std::string& password) {
  CallResult r = Call(auth::kRegister, NamePassword(name, password));
  EXPECT_EQ(r.code, 0) << r.error;
  return r.body.GetUint("uid").value_or(0);
}

std::string AuthCasesTest::LoginOk(const std::string& name, const std::string& password,
                                   const std::string& device) {
  codec::MapWriter w(device.empty() ? 2 : 3);
  w.Key("name").Str(name);
  w.Key("password").Str(password);
  if (!device.empty()) w.Key("device").Str(device);
  CallResult r = Call(auth::kLogin, w.Finish());
  EXPECT_EQ(r.code, 0) << r.error;
  return r.body.GetString("token").value_or("");
}

TEST_P(AuthCasesTest, RegisterGivesIncreasingUids) {
  const uint64_t a = RegisterOk("alice", "secret1");
  const uint64_t b = RegisterOk("bob", "secret2");
  EXPECT_GT(a, 0u);
  EXPECT_GT(b, a);
}

TEST_P(AuthCasesTest, RegisterRejectsBadNamesAndPasswords) {
  for (const std::string& name :
       std::vector<std::string>{"", "has space", "ü", "semi;colon", std::string(33, 'a')}) {
    EXPECT_EQ(Call(auth::kRegister, NamePassword(name, "secret1")).code, CodeOf(Code::kBadRequest))
        << "name '" << name << "'";
  }
  EXPECT_EQ(Call(auth::kRegister, NamePassword("a.b-c_D9", "secret1")).code, 0);
  EXPECT_EQ(Call(auth::kRegister, NamePassword(std::string(32, 'x'), "secret1")).code, 0);
  EXPECT_EQ(Call(auth::kRegister, NamePassword("shorty", "12345")).code, CodeOf(Code::kBadRequest));
  EXPECT_EQ(Call(auth::kRegister, NamePassword("longy", std::string(129, 'p'))).code,
            CodeOf(Code::kBadRequest));
  EXPECT_EQ(Call(auth::kRegister, NamePassword("exact", std::string(128, 'p'))).code, 0);
  // Missing and ill-typed fields.
  codec::MapWriter w(1);
  w.Key("name").Str("nopass");
  EXPECT_EQ(Call(auth::kRegister, w.Finish()).code, CodeOf(Code::kBadRequest));
  codec::MapWriter t(2);
  t.Key("name").Int(5);
  t.Key("password").Str("secret1");
  CallResult r = Call(auth::kRegister, t.Finish());
  EXPECT_EQ(r.code, CodeOf(Code::kBadRequest));
  EXPECT_NE(r.error.find("name"), std::string::npos) << r.error;
}

TEST_P(AuthCasesTest, DuplicateNameIsConflictCaseInsensitively) {
  RegisterOk("Carol", "secret1");
  EXPECT_EQ(Call(auth::kRegister, NamePassword("carol", "other12")).code, CodeOf(Code::kConflict));
  EXPECT_EQ(Call(auth::kRegister, NamePassword("CAROL", "other12")).code, CodeOf(Code::kConflict));
}

TEST_P(AuthCasesTest, LoginByNameOrUidBindsTheSession) {
  const uint64_t uid = RegisterOk("dave", "secret1");
  codec::MapWriter w(4);
  w.Key("name").Str("dave");
  w.Key("password").Str("secret1");
  w.Key("p2p_port").Uint(5000);
  w.Key("local_host").Str("192.168.1.9");
  CallResult r = Call(auth::kLogin, w.Finish());
  ASSERT_EQ(r.code, 0) << r.error;
  EXPECT_EQ(r.body.GetUint("uid"), uid);
  EXPECT_EQ(r.body.GetString("name"), "dave");
  EXPECT_GE(r.body.GetString("token").value_or("").size(), 40u);
  EXPECT_EQ(r.meta.action, static_cast<uint8_t>(codec::SessionAction::kLogin));
  EXPECT_EQ(r.meta.session.uid, uid);
  EXPECT_EQ(r.meta.session.device, "default");
  EXPECT_EQ(r.meta.session.name, "dave");
  EXPECT_EQ(r.meta.session.public_host, "203.0.113.5");
  EXPECT_EQ(r.meta.session.public_port, 40001);
  EXPECT_EQ(r.meta.session.local_host, "192.168.1.9");
  EXPECT_EQ(r.meta.session.p2p_port, 5000);

  codec::MapWriter u(3);
  u.Key("uid").Uint(uid);
  u.Key("password").Str("secret1");
  u.Key("device").Str("phone");
  CallResult r2 = Call(auth::kLogin, u.Finish());
  ASSERT_EQ(r2.code, 0) << r2.error;
  EXPECT_EQ(r2.meta.session.device, "phone");
  EXPECT_NE(r2.body.GetString("token"), r.body.GetString("token"));
}

TEST_P(AuthCasesTest, LoginFailuresLookTheSame) {
  const uint64_t uid = RegisterOk("erin", "secret1");
  CallResult wrong = Call(auth::kLogin, NamePassword("erin", "wrong12"));
  CallResult unknown = Call(auth::kLogin, NamePassword("nobody", "secret1"));
  EXPECT_EQ(wrong.code, CodeOf(Code::kUnauthenticated));
  EXPECT_EQ(unknown.code, CodeOf(Code::kUnauthenticated));
  EXPECT_EQ(wrong.error, unknown.error);
  EXPECT_EQ(wrong.meta.action, 0);
  codec::MapWriter u(2);
  u.Key("uid").Uint(uid + 1000);
  u.Key("password").Str("secret1");
  EXPECT_EQ(Call(auth::kLogin, u.Finish()).code, CodeOf(Code::kUnauthenticated));
  codec::MapWriter n(1);
  n.Key("password").Str("secret1");
  EXPECT_EQ(Call(auth::kLogin, n.Finish()).code, CodeOf(Code::kBadRequest));
}

TEST_P(AuthCasesTest, ResumeWithTokenUntilLogoutOrExpiry) {
  const uint64_t uid = RegisterOk("frank", "secret1");
  const std::string token = LoginOk("frank", "secret1", "laptop");
  codec::MapWriter w(1);
  w.Key("token").Str(token);
  const std::string resume = w.Finish();
  CallResult r = Call(auth::kResume, resume);
  ASSERT_EQ(r.code, 0) << r.error;
  EXPECT_EQ(r.body.GetUint("uid"), uid);
  EXPECT_EQ(r.body.GetString("name"), "frank");
  EXPECT_EQ(r.meta.action, static_cast<uint8_t>(codec::SessionAction::kLogin));
  EXPECT_EQ(r.meta.session.device, "laptop");

  codec::MapWriter bad(1);
  bad.Key("token").Str("not-a-token");
  EXPECT_EQ(Call(auth::kResume, bad.Finish()).code, CodeOf(Code::kUnauthenticated));
  codec::MapWriter other(2);
  other.Key("token").Str(token);
  other.Key("device").Str("phone");
  EXPECT_EQ(Call(auth::kResume, other.Finish()).code, CodeOf(Code::kUnauthenticated));

  // LOGOUT on another device leaves this token alone; on its own device kills it.
  CallResult out_other = Call(auth::kLogout, codec::EmptyBody(), uid, "phone");
  EXPECT_EQ(out_other.code, 0);
  EXPECT_EQ(Call(auth::kResume, resume).code, 0);
  CallResult out = Call(auth::kLogout, codec::EmptyBody(), uid, "laptop");
  EXPECT_EQ(out.code, 0);
  EXPECT_EQ(out.meta.action, static_cast<uint8_t>(codec::SessionAction::kLogout));
  EXPECT_EQ(Call(auth::kResume, resume).code, CodeOf(Code::kUnauthenticated));
  EXPECT_EQ(Call(auth::kLogout, codec::EmptyBody()).code, CodeOf(Code::kUnauthenticated));

  // Expiry: tokens live token_ttl_s (3600 s here).
  const std::string t2 = LoginOk("frank", "secret1");
  codec::MapWriter w2(1);
  w2.Key("token").Str(t2);
  const std::string resume2 = w2.Finish();
  now_ms_ += 3599 * 1000;
  EXPECT_EQ(Call(auth::kResume, resume2).code, 0);
  now_ms_ += 2000;
  EXPECT_EQ(Call(auth::kResume, resume2).code, CodeOf(Code::kUnauthenticated));
}

TEST_P(AuthCasesTest, DeleteAccountKicksFreesNameAndNeverReusesUid) {
  const uint64_t uid = RegisterOk("gina", "secret1");
  const std::string token = LoginOk("gina", "secret1");
  codec::MapWriter wrong(2);
  wrong.Key("uid").Uint(uid);
  wrong.Key("password").Str("wrong12");
  EXPECT_EQ(Call(auth::kDeleteAccount, wrong.Finish()).code, CodeOf(Code::kUnauthenticated));

  codec::MapWriter w(2);
  w.Key("uid").Uint(uid);
  w.Key("password").Str("secret1");
  const std::string del = w.Finish();
  CallResult r = Call(auth::kDeleteAccount, del, uid, "default");
  ASSERT_EQ(r.code, 0) << r.error;
  EXPECT_EQ(r.meta.kick_uid, uid);
  EXPECT_EQ(r.meta.kick_reason, "account deleted");
  EXPECT_EQ(r.meta.action, static_cast<uint8_t>(codec::SessionAction::kLogout));

  EXPECT_EQ(Call(auth::kLogin, NamePassword("gina", "secret1")).code,
            CodeOf(Code::kUnauthenticated));
  codec::MapWriter t(1);
  t.Key("token").Str(token);
  EXPECT_EQ(Call(auth::kResume, t.Finish()).code, CodeOf(Code::kUnauthenticated));
  EXPECT_EQ(Call(auth::kDeleteAccount, del).code, CodeOf(Code::kUnauthenticated));

  const uint64_t again = RegisterOk("GINA", "secret9");
  EXPECT_GT(again, uid);
  codec::MapWriter old(2);
  old.Key("uid").Uint(uid);
  old.Key("password").Str("secret1");
  EXPECT_EQ(Call(auth::kLogin, old.Finish()).code, CodeOf(Code::kUnauthenticated));

  // Deleting from another connection kicks without logging that connection out.
  const uint64_t h = RegisterOk("hank", "secret1");
  codec::MapWriter hw(2);
  hw.Key("uid").Uint(h);
  hw.Key("password").Str("secret1");
  CallResult hr = Call(auth::kDeleteAccount, hw.Finish(), again, "default");
  EXPECT_EQ(hr.code, 0);
  EXPECT_EQ(hr.meta.kick_uid, h);
  EXPECT_EQ(hr.meta.action, 0);
}

TEST_P(AuthCasesTest, MalformedBodyAndUnknownCommand) {
  EXPECT_EQ(Call(auth::kRegister, std::string("\x92\x01\x02", 3)).code,
            CodeOf(Code::kBadRequest));  // an array, not a map
  EXPECT_EQ(Call(auth::kRegister, std::string("\x81", 1)).code, CodeOf(Code::kBadRequest));
  EXPECT_EQ(Call(77, codec::EmptyBody()).code, CodeOf(Code::kUnsupported));
}

namespace {
std::string LoginBody(const std::string& name, const std::string& password,
                      const std::string& device) {
  codec::MapWriter w(3);
  w.Key("name").Str(name);
  w.Key("password").Str(password);
  w.Key("device").Str(device);
  return w.Finish();
}

std::string TokenBody(const std::string& token) {
  codec::MapWriter w(1);
  w.Key("token").Str(token);
  return w.Finish();
}

std::string UidPassword(uint64_t uid, const std::string& password) {
  codec::MapWriter w(2);
  w.Key("uid").Uint(uid);
  w.Key("password").Str(password);
  return w.Finish();
}
}  // namespace

// Names match byte for byte (no case folding, no trailing-space padding) but stay
// unique ignoring case; a name no account can have is a wrong name, not an error.
TEST_P(AuthCasesTest, NamesCompareExactly) {
  const uint64_t uid = RegisterOk("Hank", "secret1");
  for (const char* name : {"hank", "HANK", "Hank ", " Hank", "H\xc3\xa4nk", "Hank\xff",
                           "\xe6\x9d\x8e\xe5\x9b\x9b", "Hank_with_a_name_longer_than_32_bytes"}) {
    CallResult r = Call(auth::kLogin, NamePassword(name, "secret1"));
    EXPECT_EQ(r.code, CodeOf(Code::kUnauthenticated)) << name << ": " << r.error;
  }
  EXPECT_EQ(Call(auth::kRegister, NamePassword("hank", "secret1")).code, CodeOf(Code::kConflict));
  EXPECT_EQ(Call(auth::kRegister, NamePassword("H\xc3\xa4nk", "secret1")).code,
            CodeOf(Code::kBadRequest));
  codec::MapWriter both(3);
  both.Key("uid").Uint(uid);
  both.Key("name").Str("hank");
  both.Key("password").Str("secret1");
  EXPECT_EQ(Call(auth::kLogin, both.Finish()).code, CodeOf(Code::kUnauthenticated));
  CallResult ok = Call(auth::kLogin, NamePassword("Hank", "secret1"));
  ASSERT_EQ(ok.code, 0) << ok.error;
  EXPECT_EQ(ok.body.GetUint("uid"), uid);
}

// String fields outside their rules are BAD_REQUEST, before any store access.
TEST_P(AuthCasesTest, BadStringFieldsAreBadRequest) {
  RegisterOk("ivy", "secret1");
  const std::string token = LoginOk("ivy", "secret1", "phone");
  for (const std::string& device : {std::string("\xff\xfe"), std::string("ph\xc0\xafone"),
                                    std::string(65, 'd'), std::string()}) {
    EXPECT_EQ(Call(auth::kLogin, LoginBody("ivy", "secret1", device)).code,
              CodeOf(Code::kBadRequest));
    codec::MapWriter w(2);
    w.Key("token").Str(token);
    w.Key("device").Str(device);
    EXPECT_EQ(Call(auth::kResume, w.Finish()).code, CodeOf(Code::kBadRequest));
  }
  // A 64-byte UTF-8 device is fine (multi-byte characters count as bytes).
  std::string long_device;
  for (int i = 0; i < 16; ++i) long_device += "\xf0\x9f\x93\xb1";
  EXPECT_EQ(Call(auth::kLogin, LoginBody("ivy", "secret1", long_device)).code, 0);
  EXPECT_EQ(Call(auth::kResume, TokenBody("")).code, CodeOf(Code::kBadRequest));
  EXPECT_EQ(Call(auth::kResume, TokenBody(std::string(129, 't'))).code, CodeOf(Code::kBadRequest));
  codec::MapWriter host(3);
  host.Key("name").Str("ivy");
  host.Key("password").Str("secret1");
  host.Key("local_host").Str("\xff");
  EXPECT_EQ(Call(auth::kLogin, host.Finish()).code, CodeOf(Code::kBadRequest));
  EXPECT_EQ(Call(auth::kResume, TokenBody(token)).code, 0);
}

// One token per (user, device): a new LOGIN on a device replaces its token.
TEST_P(AuthCasesTest, OneTokenPerDevice) {
  RegisterOk("jack", "secret1");
  std::vector<std::string> phone;
  for (int i = 0; i < 5; ++i) {
    phone.push_back(LoginOk("jack", "secret1", "phone"));
    now_ms_ += 1000;
  }
  const std::string laptop = LoginOk("jack", "secret1", "laptop");
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(Call(auth::kResume, TokenBody(phone[static_cast<size_t>(i)])).code,
              CodeOf(Code::kUnauthenticated))
        << i;
  }
  EXPECT_EQ(Call(auth::kResume, TokenBody(phone.back())).code, 0);
  EXPECT_EQ(Call(auth::kResume, TokenBody(laptop)).code, 0);
  // "Phone" is another device than "phone".
  now_ms_ += 1000;
  const std::string upper = LoginOk("jack", "secret1", "Phone");
  EXPECT_EQ(Call(auth::kResume, TokenBody(phone.back())).code, 0);
  EXPECT_EQ(Call(auth::kResume, TokenBody(upper)).code, 0);
  // At most 32 devices keep a token: each further one drops the token expiring first.
  for (int i = 0; i < 31; ++i) {
    now_ms_ += 1000;
    LoginOk("jack", "secret1", "dev" + std::to_string(i));
  }
  EXPECT_EQ(Call(auth::kResume, TokenBody(phone.back())).code, CodeOf(Code::kUnauthenticated));
  EXPECT_EQ(Call(auth::kResume, TokenBody(laptop)).code, CodeOf(Code::kUnauthenticated));
  EXPECT_EQ(Call(auth::kResume, TokenBody(upper)).code, 0);
}

// Failed password checks per account (AccountBackoff defaults: 10 free, then 1 s
// doubling): LOGIN and DELETE_ACCOUNT count together; the right password is refused
// while the account waits; a success clears the count.
TEST_P(AuthCasesTest, FailedPasswordChecksPerAccountBackOff) {
  const uint64_t uid = RegisterOk("kim", "secret1");
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Call(auth::kLogin, NamePassword("kim", "wrong12")).code,
              CodeOf(Code::kUnauthenticated));
    EXPECT_EQ(Call(auth::kDeleteAccount, UidPassword(uid, "wrong12")).code,
              CodeOf(Code::kUnauthenticated));
  }
  // The 11th failure is let through and makes the next check wait 1 s.
  EXPECT_EQ(Call(auth::kDeleteAccount, UidPassword(uid, "wrong12")).code,
            CodeOf(Code::kUnauthenticated));
  CallResult limited = Call(auth::kLogin, NamePassword("kim", "secret1"));
  EXPECT_EQ(limited.code, CodeOf(Code::kRateLimited));
  EXPECT_EQ(limited.body.GetInt("retry_ms"), 1000);
  EXPECT_EQ(limited.meta.action, 0);
  EXPECT_EQ(Call(auth::kDeleteAccount, UidPassword(uid, "secret1")).code,
            CodeOf(Code::kRateLimited));
  now_ms_ += 400;
  EXPECT_EQ(Call(auth::kLogin, NamePassword("kim", "secret1")).body.GetInt("retry_ms"), 600);
  now_ms_ += 600;
  EXPECT_EQ(Call(auth::kLogin, NamePassword("kim", "wrong12")).code,
            CodeOf(Code::kUnauthenticated));
  EXPECT_EQ(Call(auth::kLogin, NamePassword("kim", "secret1")).body.GetInt("retry_ms"), 2000);
  // Another account is not affected.
  RegisterOk("lee", "secret1");
  LoginOk("lee", "secret1");
  now_ms_ += 2000;
  LoginOk("kim", "secret1");
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(Call(auth::kLogin, NamePassword("kim", "wrong12")).code,
              CodeOf(Code::kUnauthenticated));
  }
  // A long quiet spell (10 x the longest wait) starts afresh too.
  EXPECT_EQ(Call(auth::kLogin, NamePassword("kim", "wrong12")).code,
            CodeOf(Code::kUnauthenticated));
  EXPECT_EQ(Call(auth::kLogin, NamePassword("kim", "wrong12")).code, CodeOf(Code::kRateLimited));
  now_ms_ += 10 * 300000;
  EXPECT_EQ(Call(auth::kLogin, NamePassword("kim", "wrong12")).code,
            CodeOf(Code::kUnauthenticated));
  LoginOk("kim", "secret1");
}

}  // namespace imbus::actors::testing

namespace imbus::actors::testing {

// Parallel checks while an account backs off: the first admitted reserves the slot in
// the store, so a second one (another worker, same store) is refused until then; a
// clean account admits any number at once (good logins in parallel are not limited).
TEST_P(AuthCasesTest, BackingOffAccountAdmitsOneCheckAtATime) {
  // A store of its own (the dispatcher's is not used in this test).
  std::unique_ptr<AuthStore> store = GetParam().make();
  const uint64_t uid = store->CreateUser("mia", "hash").value();
  AccountBackoff a(store.get(), AccountBackoffOptions{2, 100, 1000});
  AccountBackoff b(store.get(), AccountBackoffOptions{2, 100, 1000});
  const int64_t t = now_ms_;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a.Admit(uid, t).wait_ms, 0);
  a.Failed(uid, t);
  b.Failed(uid, t);
  EXPECT_EQ(a.Admit(uid, t).wait_ms, 0);    // the third check goes, reserving 100 ms
  EXPECT_EQ(b.Admit(uid, t).wait_ms, 100);  // a parallel one does not
  EXPECT_EQ(a.Admit(uid, t + 30).wait_ms, 70);
  b.Failed(uid, t + 10);
  EXPECT_EQ(a.Admit(uid, t + 100).wait_ms, 10);
  const AccountBackoff::Admission ok = b.Admit(uid, t + 110);
  EXPECT_EQ(ok.wait_ms, 0);
  EXPECT_TRUE(ok.has_failures);
  b.Succeeded(uid, ok);
  EXPECT_FALSE(store->FindFailures(uid).has_value());
  EXPECT_EQ(a.Admit(uid, t + 110).wait_ms, 0);
}

}  // namespace imbus::actors::testing
