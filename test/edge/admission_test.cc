// Admission on its own, on a fake clock: the verdicts for connections, requests and
// logins, and how forwarded logins' answers feed the per-address backoff. No sockets:
// a Connection without an fd carries the address and the buckets.
#include "edge/admission.h"

#include <gtest/gtest.h>

#include "codec/body.h"
#include "codec/codes.h"
#include "codec/commands.h"

namespace imbus::edge {
namespace {

using std::chrono::milliseconds;
const Clock::time_point kT0 = Clock::time_point() + std::chrono::hours(1);

Connection Conn(uint64_t id, const std::string& host) {
  return Connection(id, net::UniqueFd(), 65536, host, 40000, kT0);
}

codec::Header Header(codec::Service service, uint16_t command, uint32_t seq) {
  codec::Header h;
  h.service = codec::ToWire(service);
  h.command = command;
  h.seq = seq;
  return h;
}

codec::Body Parsed(const std::string& bytes) {
  codec::Body b;
  std::string error;
  EXPECT_TRUE(codec::Body::Parse(bytes, &b, &error)) << error;
  return b;
}

std::string LoginBody(uint64_t uid) {
  codec::MapWriter w(2);
  w.Key("uid").Uint(uid);
  w.Key("password").Str("x");
  return w.Finish();
}

std::string CodeBody(codec::Code code) {
  codec::MapWriter w(1);
  w.Key("code").Int(static_cast<int>(code));
  return w.Finish();
}

class AdmissionTest : public ::testing::Test {
 protected:
  AdmissionTest() : limits_(2, Backoff()), admission_("edge-t/0", Options(), &stats_, &limits_) {}

  static LoginBackoffOptions Backoff() {
    LoginBackoffOptions o;
    o.free_failures = 1;
    o.base_ms = 1000;
    o.max_ms = 8000;
    return o;
  }
  const EdgeOptions& Options() {
    options_.conn_requests = net::TokenRate{10, 3};
    options_.conn_sends = net::TokenRate{1, 1};
    options_.file_bytes = net::TokenRate{50000, 32768};
    return options_;
  }

  EdgeOptions options_;
  EdgeStats stats_;
  IpLimits limits_;
  Admission admission_;
};

TEST_F(AdmissionTest, ConnectionsOverTheAddressCapAreRefusedAndReleaseFreesASlot) {
  Connection a = Conn(1, "10.0.0.1"), b = Conn(2, "10.0.0.1"), c = Conn(3, "10.0.0.1");
  EXPECT_TRUE(admission_.AdmitConnection(a, kT0).admitted);
  EXPECT_TRUE(admission_.AdmitConnection(b, kT0).admitted);
  const Verdict v = admission_.AdmitConnection(c, kT0);
  EXPECT_FALSE(v.admitted);
  EXPECT_EQ(v.message, "too many connections from 10.0.0.1");
  EXPECT_FALSE(c.ip_counted());
  EXPECT_EQ(stats_.refused_ip_cap.load(), 1u);
  // Another address is not affected; a release lets the next one in.
  Connection other = Conn(4, "10.0.0.2");
  EXPECT_TRUE(admission_.AdmitConnection(other, kT0).admitted);
  admission_.Release(a);
  admission_.Release(c);  // never counted: releases nothing
  EXPECT_EQ(limits_.open_connections("10.0.0.1"), 1u);
  EXPECT_TRUE(admission_.AdmitConnection(c, kT0).admitted);
}

TEST_F(AdmissionTest, RequestRateThenSendRateWithRetryAndNoTokensTakenOnRefusal) {
  Connection c = Conn(1, "10.0.0.1");
  const codec::CommandInfo* ping =
      codec::FindCommand(codec::ToWire(codec::Service::kSys), codec::sys::kPing);
  const codec::CommandInfo* send =
      codec::FindCommand(codec::ToWire(codec::Service::kMsg), codec::msg::kSend);
  EXPECT_TRUE(admission_.AdmitRequest(c, send, kT0).admitted);
  // The send bucket (burst 1) is empty: refused by sends, the request token kept.
  Verdict v = admission_.AdmitRequest(c, send, kT0);
  EXPECT_FALSE(v.admitted);
  EXPECT_EQ(v.retry_ms, 1000);
  EXPECT_EQ(v.message, "too many messages on this connection; slow down");
  EXPECT_EQ(stats_.rate_limited_send.load(), 1u);
  EXPECT_TRUE(admission_.AdmitRequest(c, ping, kT0).admitted);
  EXPECT_TRUE(admission_.AdmitRequest(c, ping, kT0).admitted);
  v = admission_.AdmitRequest(c, ping, kT0);
  EXPECT_FALSE(v.admitted);
  EXPECT_EQ(v.retry_ms, 100);
  EXPECT_EQ(v.message, "too many requests on this connection; slow down");
  EXPECT_EQ(stats_.rate_limited.load(), 1u);
  EXPECT_TRUE(admission_.AdmitRequest(c, ping, kT0 + milliseconds(100)).admitted);
}

// The file byte budget is the edge's, not a connection's: a second uploader waits for
// the first's bytes to drain, chunks cost their size and DOWNLOADs 32 KiB, and chat
// requests on the same connections are never held back.
TEST_F(AdmissionTest, FileBytesShareOneBudgetAndNeverHoldBackChat) {
  Connection a = Conn(1, "10.0.0.1"), b = Conn(2, "10.0.0.2");
  const codec::CommandInfo* chunk =
      codec::FindCommand(codec::ToWire(codec::Service::kFile), codec::file::kUploadChunk);
  const codec::CommandInfo* download =
      codec::FindCommand(codec::ToWire(codec::Service::kFile), codec::file::kDownload);
  const codec::CommandInfo* send =
      codec::FindCommand(codec::ToWire(codec::Service::kMsg), codec::msg::kSend);
  // 50,000 bytes/s, 32,768 at once.
  EXPECT_TRUE(admission_.AdmitRequest(a, chunk, kT0, 20000).admitted);
  Verdict v = admission_.AdmitRequest(b, chunk, kT0, 20000);
  EXPECT_FALSE(v.admitted) << "the other connection draws from the same budget";
  EXPECT_EQ(v.retry_ms, 145);  // (20,000 - 12,768) / 50,000 s
  EXPECT_EQ(v.message, "the server is moving other files; retry shortly");
  EXPECT_EQ(stats_.rate_limited.load(), 1u);
  EXPECT_TRUE(admission_.AdmitRequest(b, send, kT0).admitted) << "chat is not held back";
  EXPECT_TRUE(admission_.AdmitRequest(b, chunk, kT0 + milliseconds(145), 20000).admitted);
  // A DOWNLOAD costs a whole default chunk whatever its frame's size.
  v = admission_.AdmitRequest(a, download, kT0 + milliseconds(400), 40);
  EXPECT_FALSE(v.admitted);
  EXPECT_TRUE(admission_.AdmitRequest(a, download, kT0 + milliseconds(800), 40).admitted);
  // A chunk larger than the burst waits for a full bucket, not forever.
  EXPECT_TRUE(admission_.AdmitRequest(b, chunk, kT0 + milliseconds(2000), 60000).admitted);
}

// Two loops of one edge draw from the edge's one budget.
TEST_F(AdmissionTest, TheLoopsOfAnEdgeShareItsFileBudget) {
  FileBudget budget(net::TokenRate{50000, 32768});
  EdgeStats other_stats;
  Admission loop0("edge-t/0", options_, &stats_, &limits_, &budget);
  Admission loop1("edge-t/1", options_, &other_stats, &limits_, &budget);
  Connection a = Conn(1, "10.0.0.1"), b = Conn(2, "10.0.0.2");
  const codec::CommandInfo* chunk =
      codec::FindCommand(codec::ToWire(codec::Service::kFile), codec::file::kUploadChunk);
  EXPECT_TRUE(loop0.AdmitRequest(a, chunk, kT0, 30000).admitted);
  EXPECT_FALSE(loop1.AdmitRequest(b, chunk, kT0, 30000).admitted);
  EXPECT_TRUE(loop1.AdmitRequest(b, chunk, kT0 + milliseconds(600), 30000).admitted);
}

TEST(RateClassTest, TheCommandTableNamesTheSendAndCredentialCommands) {
  auto rate = [](codec::Service s, uint16_t command) {
    const codec::CommandInfo* info = codec::FindCommand(codec::ToWire(s), command);
    EXPECT_NE(info, nullptr);
    return info == nullptr ? codec::RateClass::kOrdinary : info->rate;
  };
  EXPECT_EQ(rate(codec::Service::kMsg, codec::msg::kSend), codec::RateClass::kSend);
  EXPECT_EQ(rate(codec::Service::kAuth, codec::auth::kLogin), codec::RateClass::kCredentials);
  EXPECT_EQ(rate(codec::Service::kAuth, codec::auth::kResume), codec::RateClass::kCredentials);
  EXPECT_EQ(rate(codec::Service::kAuth, codec::auth::kDeleteAccount),
            codec::RateClass::kCredentials);
  EXPECT_EQ(rate(codec::Service::kAuth, codec::auth::kRegister), codec::RateClass::kOrdinary);
  EXPECT_EQ(rate(codec::Service::kMsg, codec::msg::kSync), codec::RateClass::kOrdinary);
  EXPECT_EQ(rate(codec::Service::kFile, codec::file::kUploadChunk), codec::RateClass::kFileBytes);
  EXPECT_EQ(rate(codec::Service::kFile, codec::file::kDownload), codec::RateClass::kFileBytes);
  EXPECT_EQ(rate(codec::Service::kFile, codec::file::kUploadStart), codec::RateClass::kOrdinary);
}

TEST_F(AdmissionTest, FailedLoginAnswersMakeTheAddressWaitAndSuccessForgives) {
  Connection c = Conn(7, "10.0.0.9");
  const codec::Body body = Parsed(LoginBody(42));
  auto attempt = [&](uint32_t seq, codec::Code answer, Clock::time_point now) {
    const Verdict v = admission_.AdmitLogin(c, now);
    if (!v.admitted) return v;
    admission_.NoteLoginForwarded(c, Header(codec::Service::kAuth, codec::auth::kLogin, seq), body);
    EXPECT_EQ(admission_.pending_logins(), 1u);
    admission_.NoteReply(7, seq, CodeBody(answer), now);
    EXPECT_EQ(admission_.pending_logins(), 0u);
    return v;
  };
  EXPECT_TRUE(attempt(1, codec::Code::kUnauthenticated, kT0).admitted);
  EXPECT_TRUE(attempt(2, codec::Code::kUnauthenticated, kT0).admitted);
  // Two failures, one free: the address now waits a second.
  const Verdict v = admission_.AdmitLogin(c, kT0);
  EXPECT_FALSE(v.admitted);
  EXPECT_EQ(v.retry_ms, 1000);
  EXPECT_EQ(v.message, "too many failed logins from this address; wait");
  EXPECT_EQ(stats_.login_backoff.load(), 1u);
  // The right password for account 42 forgives its failures: no wait after it (the
  // attempt itself reserved the next two seconds).
  const auto t1 = kT0 + milliseconds(1000);
  EXPECT_TRUE(attempt(3, codec::Code::kOk, t1).admitted);
  EXPECT_TRUE(admission_.AdmitLogin(c, t1).admitted);
}

TEST_F(AdmissionTest, OnlyAnswersToForwardedLoginsCount) {
  Connection c = Conn(8, "10.0.0.8");
  const codec::Body body = Parsed(LoginBody(5));
  for (uint32_t seq = 1; seq <= 3; ++seq) {
    ASSERT_TRUE(admission_.AdmitLogin(c, kT0).admitted) << seq;
    admission_.NoteLoginForwarded(c, Header(codec::Service::kAuth, codec::auth::kLogin, seq), body);
    admission_.ForgetLogin(8, seq);  // timed out: its late answer counts for nothing
    admission_.NoteReply(8, seq, CodeBody(codec::Code::kUnauthenticated), kT0);
    // Nor does an answer to a request that was never a login.
    admission_.NoteReply(8, 100 + seq, CodeBody(codec::Code::kUnauthenticated), kT0);
  }
  EXPECT_EQ(admission_.pending_logins(), 0u);
  EXPECT_TRUE(admission_.AdmitLogin(c, kT0).admitted);
  EXPECT_EQ(stats_.login_backoff.load(), 0u);
}

}  // namespace
}  // namespace imbus::edge
