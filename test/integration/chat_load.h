// Internal to tests. A chat load as real clients make it, for fault drills and chaos
// tests: several users, each on a thread of its own, send 1:1 and group messages with
// unique cmids, retry every failure with the same cmid (reconnecting with backoff and
// RESUME when the connection is lost), and record every (conv, seq) the server
// acknowledged. The checks below then prove nothing acknowledged was lost or
// duplicated and every conversation is gap-free.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test/actors/msg/msg_test_util.h"

namespace imbus::testing {

// One message the sender saw acknowledged.
struct Acked {
  uint64_t sender = 0;
  std::string cmid;
  std::string conv;
  uint64_t seq = 0;
};

struct ChatLoadOptions {
  int users = 4;
  // One request; longer than the edge's request timeout so the edge answers first.
  std::chrono::milliseconds call_timeout{8000};
  // All attempts at one message; past it the message counts as never acknowledged.
  std::chrono::milliseconds retry_for{45000};
  size_t text_bytes = 16;  // padding per message text
  std::string cmid_prefix = "L";
};

// Owns its threads; Stop() (or the destructor) joins them. Start/Stop/accessors from
// the test's thread; the counters are safe to read while the load runs.
class ChatLoad {
 public:
  // Registers the users (on edge 0) and makes one group of all of them in the DB.
  ChatLoad(Stack& stack, const DbConfig& db, ChatLoadOptions options = {});
  ~ChatLoad();
  ChatLoad(const ChatLoad&) = delete;
  ChatLoad& operator=(const ChatLoad&) = delete;

  void Start();
  // Waits until `n` more messages than now were acknowledged.
  bool WaitProgress(size_t n, std::chrono::milliseconds timeout);
  void Stop();
  // The edge port clients (re)connect to from now on.
  void set_port(int port) { port_ = port; }

  std::vector<Acked> acked() const;
  size_t acked_count() const { return acked_count_.load(); }
  int failures() const { return failures_.load(); }  // attempts retried
  int resumes() const { return resumes_.load(); }    // reconnects resumed by token
  int relogins() const { return relogins_.load(); }  // reconnects that needed LOGIN
  const std::vector<TestUser>& users() const { return users_; }
  uint64_t gid() const { return gid_; }

 private:
  void Run(size_t i);
  // Connects and RESUMEs (or logs in the first time) until it works or `deadline`.
  bool Reconnect(client::Client& c, const TestUser& me, std::string* token,
                 std::chrono::steady_clock::time_point deadline);

  Stack& stack_;
  ChatLoadOptions options_;
  std::vector<TestUser> users_;
  uint64_t gid_ = 0;
  std::atomic<int> port_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> acked_count_{0};
  std::atomic<int> failures_{0}, resumes_{0}, relogins_{0};
  mutable std::mutex mu_;
  std::vector<Acked> acked_;  // guarded by mu_
  std::vector<std::thread> threads_;
};

// SQL: every acknowledged message is stored exactly once with the (conv, seq) it was
// acknowledged with, and every conversation's seqs are exactly 1..last_seq.
void ExpectStoredExactlyOnce(const Stack& stack, const DbConfig& db,
                             const std::vector<Acked>& acked);

// The recipients' view: for every conversation, a member other than the sender pages
// through HISTORY and sees every acknowledged message once at its seq, gap-free.
void ExpectRecipientsSeeAll(Stack& stack, const std::vector<TestUser>& users,
                            const std::vector<Acked>& acked);

// Within `timeout`, a newly registered user logs in on `port` and sends a message that
// another new user, already online, receives as a push. False (with *why) otherwise.
bool ServesAgain(int port, std::chrono::milliseconds timeout, std::string* why);

}  // namespace imbus::testing
