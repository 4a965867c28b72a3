// EdgeLoop, rate limits: the per-connection token buckets, the per-address login
// backoff and connection cap (IpLimits, shared by the loops). A refused request is
// answered RATE_LIMITED with `retry_ms` and goes no further; the connection stays.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "codec/body.h"
#include "codec/commands.h"
#include "edge/edge_loop.h"

namespace imbus::edge {

namespace {
constexpr auto kRefusalLogEvery = std::chrono::seconds(1);

// The account a LOGIN/DELETE_ACCOUNT body (or a LOGIN answer) names: its uid and its
// name as targets of LoginBackoff. A field of the wrong type names nothing (the auth
// service answers that request BAD_REQUEST, which the backoff ignores).
void AddTargets(const codec::Body& body, std::vector<std::string>* out) {
  try {
    if (std::optional<uint64_t> uid = body.GetUint("uid")) {
      out->push_back("u:" + std::to_string(*uid));
    }
    if (std::optional<std::string> name = body.GetString("name")) out->push_back("n:" + *name);
  } catch (const codec::BadField&) {
  }
}
}  // namespace

bool EdgeLoop::AdmitConnectionRate(Connection& c, const codec::Header& h, Clock::time_point now) {
  const bool send =
      h.service == codec::ToWire(codec::Service::kMsg) && h.command == codec::msg::kSend;
  const int64_t wait_requests = c.request_bucket().Check(options_.conn_requests, now);
  const int64_t wait_sends = send ? c.send_bucket().Check(options_.conn_sends, now) : 0;
  if (wait_requests == 0 && wait_sends == 0) {
    c.request_bucket().Consume(options_.conn_requests);
    if (send) c.send_bucket().Consume(options_.conn_sends);
    return true;
  }
  const bool by_sends = wait_sends > 0;
  EdgeStats::Add(by_sends ? stats_->rate_limited_send : stats_->rate_limited);
  spdlog::debug("{}: conn {} from {}:{}: over the per-connection {} rate", log_name_, c.id(),
                c.peer_host(), c.peer_port(), by_sends ? "MSG/SEND" : "request");
  Respond(c, h,
          codec::RateLimitedBody(std::max(wait_requests, wait_sends),
                                 by_sends ? "too many messages on this connection; slow down"
                                          : "too many requests on this connection; slow down"));
  return false;
}

bool EdgeLoop::AdmitLogin(Connection& c, const codec::Header& h, Clock::time_point now) {
  const int64_t wait = ip_limits_->AdmitLogin(c.peer_host(), now);
  if (wait == 0) return true;
  EdgeStats::Add(stats_->login_backoff);
  spdlog::debug("{}: conn {} from {}:{}: login refused for {} ms after failed attempts", log_name_,
                c.id(), c.peer_host(), c.peer_port(), wait);
  Respond(c, h, codec::RateLimitedBody(wait, "too many failed logins from this address; wait"));
  return false;
}

void EdgeLoop::NoteLoginForwarded(const Connection& c, const codec::Header& h,
                                  const codec::Body& body) {
  if (!ip_limits_->login_backoff_enabled()) return;
  std::vector<std::string> targets;
  if (h.command != codec::auth::kResume) AddTargets(body, &targets);
  // LOGIN by uid and name: the uid decides which account is checked.
  std::string target = targets.empty() ? "" : std::move(targets.front());
  pending_logins_[{c.id(), h.seq}] = PendingLogin{c.peer_host(), std::move(target)};
}

void EdgeLoop::NoteLoginReply(uint64_t conn, uint32_t seq, std::string_view body) {
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
    AddTargets(parsed, &targets);
    ip_limits_->LoginSucceeded(login.ip, targets);
  } else if (code == static_cast<int>(codec::Code::kUnauthenticated)) {
    ip_limits_->LoginFailed(login.ip, login.target, Clock::now());
  }
}

void EdgeLoop::ForgetLogin(uint64_t conn, uint32_t seq) {
  if (!pending_logins_.empty()) pending_logins_.erase({conn, seq});
}

bool EdgeLoop::AdmitAddress(Connection& c, Clock::time_point now) {
  if (!ip_limits_->conn_cap_enabled()) return true;
  if (ip_limits_->AcquireConnection(c.peer_host())) {
    c.set_ip_counted();
    return true;
  }
  EdgeStats::Add(stats_->refused_ip_cap);
  ++refusals_unlogged_;
  if (now >= next_refusal_log_) {
    spdlog::warn("{}: refused {} connection(s) over the cap of {} per address (latest from {})",
                 log_name_, refusals_unlogged_, ip_limits_->max_conns_per_ip(), c.peer_host());
    refusals_unlogged_ = 0;
    next_refusal_log_ = now + kRefusalLogEvery;
  }
  WriteSysError(
      c, codec::ErrorBody(codec::Code::kRateLimited, "too many connections from " + c.peer_host()));
  if (c.closed()) return false;
  // Like CloseAfterFlush, without its log line per connection (a flood would fill
  // the log): the error goes out, then FIN, then up to the grace for the peer's EOF.
  c.set_closing();
  FinishIfFlushed(c, now);
  return false;
}

}  // namespace imbus::edge
