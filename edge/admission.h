// Internal to edge/. Admission: what an edge loop lets in. The per-connection token
// buckets (every request, and MSG/SEND), the per-address connection cap and login
// backoff (IpLimits, shared by the loops), the logins forwarded and not yet answered
// (their answers feed the backoff), and the throttled log of refusals.
//
// It decides and counts; it does no I/O. A refusal comes back as a Verdict that the
// loop turns into an answer (RATE_LIMITED with `retry_ms`) or a polite close. Owned
// by one EdgeLoop and used on its thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "codec/body.h"
#include "codec/commands.h"
#include "codec/frame.h"
#include "edge/connection.h"
#include "edge/edge_stats.h"
#include "edge/file_budget.h"
#include "edge/ip_limits.h"
#include "edge/options.h"

namespace imbus::edge {

// The answer of Admission: go on, or refuse with a wait and a reason for the client.
struct Verdict {
  bool admitted = true;
  int64_t retry_ms = 0;  // 0 when nothing waiting would help (the address cap)
  std::string message;   // for the client's error body

  static Verdict Admit() { return Verdict{}; }
  static Verdict Refuse(int64_t retry_ms, std::string message) {
    return Verdict{false, retry_ms, std::move(message)};
  }
};

class Admission {
 public:
  // `ip_limits` is shared with the other loops and outlives this one; `stats` is
  // the loop's. `log_name` prefixes log lines ("edge-x/0").
  // `file_budget` is the edge's, shared with the other loops; null: one of its own
  // (tests, a single loop).
  Admission(std::string log_name, const EdgeOptions& options, EdgeStats* stats, IpLimits* ip_limits,
            FileBudget* file_budget = nullptr);
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  // A new connection: counted against its address, or refused when the address is at
  // its cap (the loop sends the SYS/ERROR and closes; refusals are logged at most once
  // a second). Release undoes the count when the connection closes.
  Verdict AdmitConnection(Connection& c, Clock::time_point now);
  void Release(const Connection& c);

  // A request on `c` (`info` null for a command the protocol does not have) of
  // `frame_bytes` bytes: its per-connection rate, the send rate for RateClass::kSend,
  // and the edge's file byte budget for RateClass::kFileBytes (an UPLOAD_CHUNK costs
  // its frame, a DOWNLOAD kDownloadCost). Admitted requests take
  // their tokens; refused ones take nothing.
  Verdict AdmitRequest(Connection& c, const codec::CommandInfo* info, Clock::time_point now,
                       size_t frame_bytes = 0);

  // What one FILE/DOWNLOAD costs of the byte budget: the largest answer at the file
  // service's default chunk (the edge does not read the request's `length`).
  static constexpr size_t kDownloadCost = 32768;

  // A command of RateClass::kCredentials (it checks a password or a token) from
  // `c`'s address: refused while the address backs off.
  Verdict AdmitLogin(const Connection& c, Clock::time_point now);
  // The credentials command went to the broker: its answer (NoteReply) will count.
  void NoteLoginForwarded(const Connection& c, const codec::Header& h, const codec::Body& body);
  // A reply passing by: the outcome of a forwarded LOGIN/RESUME/DELETE_ACCOUNT feeds
  // the address's backoff. Other replies are ignored (cheaply).
  void NoteReply(uint64_t conn, uint32_t seq, std::string_view body, Clock::time_point now);
  // The request will never be answered by the broker (timeout, broker lost).
  void ForgetLogin(uint64_t conn, uint32_t seq);
  size_t pending_logins() const { return pending_logins_.size(); }

 private:
  // (conn, seq) of a forwarded credentials command: the address, so the answer counts
  // even when the connection closed meanwhile, and the account it names ("u:<uid>",
  // "n:<name>", "" for RESUME). Bounded by the request deadline (entries go with the
  // reply or the timeout).
  struct PendingLogin {
    std::string ip;
    std::string target;
  };

  std::string log_name_;
  const EdgeOptions& options_;
  EdgeStats* stats_;
  IpLimits* ip_limits_;
  std::unique_ptr<FileBudget> own_file_budget_;  // when none was given
  FileBudget* file_budget_;
  std::map<std::pair<uint64_t, uint32_t>, PendingLogin> pending_logins_;
  Clock::time_point next_refusal_log_{};
  uint64_t refusals_unlogged_ = 0;
};

}  // namespace imbus::edge
