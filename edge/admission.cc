#include "edge/admission.h"

#include <algorithm>
#include <optional>
#include <vector>

#include <spdlog/spdlog.h>

#include "codec/codes.h"

namespace imbus::edge {

namespace {
constexpr auto kRefusalLogEvery = std::chrono::seconds(1);

// The account a LOGIN/DELETE_ACCOUNT body (or a LOGIN answer) names, as targets of
// LoginBackoff: "u:<uid>" and "n:<name>", "" for a field that is absent. A field of
// the wrong type names nothing (the auth service answers that request BAD_REQUEST,
// which the backoff ignores).
struct AccountNames {
  std::string uid;
  std::string name;
};

AccountNames NamesIn(const codec::Body& body) {
  AccountNames out;
  try {
    if (std::optional<uint64_t> uid = body.GetUint("uid")) out.uid = "u:" + std::to_string(*uid);
    if (std::optional<std::string> name = body.GetString("name")) out.name = "n:" + *name;
  } catch (const codec::BadField&) {
  }
  return out;
}
}  // namespace

Admission::Admission(std::string log_name, const EdgeOptions& options, EdgeStats* stats,
                     IpLimits* ip_limits, FileBudget* file_budget)
    : log_name_(std::move(log_name)),
      options_(options),
      stats_(stats),
      ip_limits_(ip_limits),
      own_file_budget_(file_budget == nullptr ? std::make_unique<FileBudget>(options.file_bytes)
                                              : nullptr),
      file_budget_(file_budget == nullptr ? own_file_budget_.get() : file_budget) {}

Verdict Admission::AdmitConnection(Connection& c, Clock::time_point now) {
  if (!ip_limits_->conn_cap_enabled()) return Verdict::Admit();
  if (ip_limits_->AcquireConnection(c.peer_host())) {
    c.set_ip_counted();
    return Verdict::Admit();
  }
  EdgeStats::Add(stats_->refused_ip_cap);
  ++refusals_unlogged_;
  if (now >= next_refusal_log_) {
    spdlog::warn("{}: refused {} connection(s) over the cap of {} per address (latest from {})",
                 log_name_, refusals_unlogged_, ip_limits_->max_conns_per_ip(), c.peer_host());
    refusals_unlogged_ = 0;
    next_refusal_log_ = now + kRefusalLogEvery;
  }
  return Verdict::Refuse(0, "too many connections from " + c.peer_host());
}

void Admission::Release(const Connection& c) {
  if (c.ip_counted()) ip_limits_->ReleaseConnection(c.peer_host());
}

Verdict Admission::AdmitRequest(Connection& c, const codec::CommandInfo* info,
                                Clock::time_point now, size_t frame_bytes) {
  const bool send = info != nullptr && info->rate == codec::RateClass::kSend;
  const bool file = info != nullptr && info->rate == codec::RateClass::kFileBytes;
  const int64_t wait_requests = c.request_bucket().Check(options_.conn_requests, now);
  const int64_t wait_sends = send ? c.send_bucket().Check(options_.conn_sends, now) : 0;
  const double file_cost = static_cast<double>(
      info != nullptr && info->command == codec::file::kDownload ? kDownloadCost : frame_bytes);
  // The shared budget is taken last, and only when the connection's own limits let
  // the request through (Take takes the bytes when it answers 0).
  const int64_t wait_file =
      file && wait_requests == 0 && wait_sends == 0 ? file_budget_->Take(file_cost, now) : 0;
  if (wait_requests == 0 && wait_sends == 0 && wait_file == 0) {
    c.request_bucket().Consume(options_.conn_requests);
    if (send) c.send_bucket().Consume(options_.conn_sends);
    return Verdict::Admit();
  }
  if (wait_file > 0) {
    EdgeStats::Add(stats_->rate_limited);
    spdlog::debug("{}: conn {} from {}:{}: {} over the edge's file byte rate", log_name_, c.id(),
                  c.peer_host(), c.peer_port(), info->name);
    return Verdict::Refuse(wait_file, "the server is moving other files; retry shortly");
  }
  const bool by_sends = wait_sends > 0;
  EdgeStats::Add(by_sends ? stats_->rate_limited_send : stats_->rate_limited);
  spdlog::debug("{}: conn {} from {}:{}: over the per-connection {} rate", log_name_, c.id(),
                c.peer_host(), c.peer_port(), by_sends ? info->name : "request");
  return Verdict::Refuse(std::max(wait_requests, wait_sends),
                         by_sends ? "too many messages on this connection; slow down"
                                  : "too many requests on this connection; slow down");
}

Verdict Admission::AdmitLogin(const Connection& c, Clock::time_point now) {
  const int64_t wait = ip_limits_->AdmitLogin(c.peer_host(), now);
  if (wait == 0) return Verdict::Admit();
  EdgeStats::Add(stats_->login_backoff);
  spdlog::debug("{}: conn {} from {}:{}: login refused for {} ms after failed attempts", log_name_,
                c.id(), c.peer_host(), c.peer_port(), wait);
  return Verdict::Refuse(wait, "too many failed logins from this address; wait");
}

void Admission::NoteLoginForwarded(const Connection& c, const codec::Header& h,
                                   const codec::Body& body) {
  if (!ip_limits_->login_backoff_enabled()) return;
  std::string target;
  if (!(h.service == codec::ToWire(codec::Service::kAuth) && h.command == codec::auth::kResume)) {
    // LOGIN by uid and name: the uid decides which account is checked.
    AccountNames names = NamesIn(body);
    target = names.uid.empty() ? std::move(names.name) : std::move(names.uid);
  }
  pending_logins_[{c.id(), h.seq}] = PendingLogin{c.peer_host(), std::move(target)};
}

void Admission::NoteReply(uint64_t conn, uint32_t seq, std::string_view body,
                          Clock::time_point now) {
  if (pending_logins_.empty()) return;
  auto it = pending_logins_.find({conn, seq});
  if (it == pending_logins_.end()) return;
  PendingLogin login = std::move(it->second);
  pending_logins_.erase(it);
  codec::Body parsed;
  std::string error;
  if (!codec::Body::Parse(body, &parsed, &error)) return;
  const int64_t code = parsed.GetInt("code").value_or(-1);
  if (code == static_cast<int>(codec::Code::kOk)) {
    // Forgive the failures at this account only, by whichever name the client used.
    std::vector<std::string> targets{login.target};
    AccountNames names = NamesIn(parsed);
    if (!names.uid.empty()) targets.push_back(std::move(names.uid));
    if (!names.name.empty()) targets.push_back(std::move(names.name));
    ip_limits_->LoginSucceeded(login.ip, targets);
  } else if (code == static_cast<int>(codec::Code::kUnauthenticated)) {
    ip_limits_->LoginFailed(login.ip, login.target, now);
  }
}

void Admission::ForgetLogin(uint64_t conn, uint32_t seq) {
  if (!pending_logins_.empty()) pending_logins_.erase({conn, seq});
}

}  // namespace imbus::edge
