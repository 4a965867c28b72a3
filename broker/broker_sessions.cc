// Broker methods on the session side: replies (session actions, kicks), pushes
// fanned out per edge thread, BIND/UNBIND. Same class and thread as broker.cc.
#include <algorithm>
#include <map>

#include <spdlog/spdlog.h>

#include "broker/broker.h"
#include "codec/body.h"
#include "codec/bus.h"
#include "codec/commands.h"

namespace imbus::broker {

namespace {
constexpr char kSameDevice[] = "logged in on the same device elsewhere";
}  // namespace

void Broker::OnReply(const std::string& worker, const std::string& meta, const std::string& body) {
  codec::ReplyMeta reply;
  if (!codec::UnpackMeta(meta, &reply)) {
    ++counters_.malformed;
    spdlog::warn("broker: unreadable REPLY from {}", worker);
    return;
  }
  std::optional<WorkerPool::Pending> p = workers_.TakePending(reply.rid);
  if (!p) {
    ++counters_.late_replies;
    spdlog::debug("broker: late reply rid {} from {} dropped", reply.rid, worker);
    return;
  }
  if (p->edge.empty()) return;  // the answer to the broker's own SESSION_EVENT
  if (peers_.count(p->edge) == 0) {
    ++counters_.dropped_replies;  // the edge died; its sessions are gone too
    return;
  }
  const uint64_t conn = p->meta.conn;
  const auto action = static_cast<codec::SessionAction>(reply.action);
  if (action == codec::SessionAction::kLogin && reply.session.uid != 0) {
    for (const auto& old : sessions_.Bind(p->edge, conn, reply.session)) Kick(old, kSameDevice);
  } else if (action == codec::SessionAction::kLogout) {
    sessions_.Unbind(p->edge, conn);
  }
  if (reply.kick_uid != 0) {
    for (const auto& s : sessions_.RemoveUserExcept(reply.kick_uid, p->edge, conn)) {
      Kick(s, reply.kick_reason);
    }
  }
  // The worker echoes conn; trust our own record if it did not.
  if (reply.conn != conn) {
    reply.conn = conn;
    if (Send(p->edge, codec::BusType::kReply, codec::PackMeta(reply), body)) ++counters_.replies;
    return;
  }
  if (Send(p->edge, codec::BusType::kReply, meta, body)) ++counters_.replies;
}

void Broker::Kick(const SessionTable::Session& s, const std::string& reason) {
  ++counters_.kicks;
  spdlog::info("broker: kick uid {} device '{}' on {} conn {}: {}", s.info.uid, s.info.device,
               s.edge, s.conn, reason);
  Send(s.edge, codec::BusType::kKick, codec::PackMeta(codec::KickMeta{s.conn, reason}));
}

void Broker::OnPush(const std::string& meta, const std::string& body) {
  codec::PushMeta push;
  if (!codec::UnpackMeta(meta, &push)) {
    ++counters_.malformed;
    return;
  }
  std::string skip_edge;
  uint64_t skip_conn = 0;
  if (push.skip_rid != 0) {
    if (const WorkerPool::Pending* p = workers_.FindPending(push.skip_rid)) {
      skip_edge = p->edge;
      skip_conn = p->meta.conn;
    }
  }
  std::sort(push.uids.begin(), push.uids.end());
  push.uids.erase(std::unique(push.uids.begin(), push.uids.end()), push.uids.end());
  std::map<std::string, codec::EdgePushMeta> per_edge;
  for (uint64_t uid : push.uids) {
    for (const SessionTable::Session& s : sessions_.SessionsOf(uid)) {
      if (s.conn == skip_conn && s.edge == skip_edge) continue;
      codec::EdgePushMeta& out = per_edge[s.edge];
      out.conns.push_back(s.conn);
    }
  }
  for (auto& [edge, out] : per_edge) {
    out.service = push.service;
    out.command = push.command;
    if (Send(edge, codec::BusType::kPush, codec::PackMeta(out), body)) ++counters_.pushes;
  }
}

void Broker::OnBind(const std::string& edge, const std::string& meta) {
  codec::BindMeta bind;
  if (!codec::UnpackMeta(meta, &bind) || bind.session.uid == 0) {
    ++counters_.malformed;
    return;
  }
  // Bound under a previous broker (we restarted, or took over from the other of a
  // pair): friends were told then that the user is online, so this is no news —
  // unless this broker has since told them the user went offline.
  const bool carried = bind.bound_at != 0 && bind.bound_at != incarnation_;
  if (carried) StartRebuild();
  const bool quiet = carried && forced_offline_.count(bind.session.uid) == 0;
  for (const auto& old : sessions_.Bind(edge, bind.conn, std::move(bind.session), quiet)) {
    Kick(old, kSameDevice);
  }
}

void Broker::OnDeparted(const std::string& edge, const std::string& meta) {
  codec::DepartedMeta departed;
  if (!codec::UnpackMeta(meta, &departed)) {
    ++counters_.malformed;
    return;
  }
  counters_.departed += departed.sessions.size();
  if (departed.bound_at == incarnation_) {
    // Closed under us: these are UNBINDs that may have been lost on the way.
    for (const auto& d : departed.sessions) sessions_.Unbind(edge, d.conn);
    return;
  }
  StartRebuild();
  // Closed while no broker heard (the previous one died first). Their friends heard
  // nothing: once the other edges have had time to re-bind, a user with no session
  // left is told offline (SettleDeparted).
  const auto settle = RebindTime();
  const auto at = Clock::now() + settle;
  for (const auto& d : departed.sessions) {
    sessions_.Unbind(edge, d.conn);
    if (d.uid != 0) departed_.push_back(Departed{d.uid, at});
  }
  spdlog::info(
      "broker: edge {} reports {} sessions closed while no broker heard; settling "
      "for {} ms",
      edge, departed.sessions.size(), settle.count());
}

void Broker::SettleDeparted(Clock::time_point now) {
  while (!departed_.empty() && departed_.front().settle_at <= now) {
    const uint64_t uid = departed_.front().uid;
    departed_.pop_front();
    if (!sessions_.SessionsOf(uid).empty()) continue;  // online elsewhere: no news
    auto [it, fresh] = forced_offline_.try_emplace(uid, now);
    if (!fresh && now - it->second < std::chrono::seconds(1)) continue;  // one per burst
    it->second = now;
    ++counters_.forced_offline;
    SendSessionEvent(uid, false);
  }
  if (!forced_offline_.empty() && departed_.empty() && now >= next_heartbeat_) {
    // Kept a minute: long enough for any late re-bind of the same users.
    std::erase_if(forced_offline_,
                  [&](const auto& e) { return now - e.second > std::chrono::minutes(1); });
  }
}

void Broker::OnUnbind(const std::string& edge, const std::string& meta) {
  codec::UnbindMeta unbind;
  if (!codec::UnpackMeta(meta, &unbind)) {
    ++counters_.malformed;
    return;
  }
  sessions_.Unbind(edge, unbind.conn);
}

void Broker::OnQuery(const std::string& worker, const std::string& meta) {
  codec::QueryMeta query;
  if (!codec::UnpackMeta(meta, &query)) {
    ++counters_.malformed;
    return;
  }
  ++counters_.queries;
  codec::QueryReplyMeta reply;
  reply.qid = query.qid;
  reply.users.reserve(query.uids.size());
  for (uint64_t uid : query.uids) {
    codec::UserSessions u;
    u.uid = uid;
    for (const SessionTable::Session& s : sessions_.SessionsOf(uid)) u.sessions.push_back(s.info);
    reply.users.push_back(std::move(u));
  }
  Send(worker, codec::BusType::kQuery, codec::PackMeta(reply));
}

void Broker::EmitSessionEvents() {
  for (const SessionTable::Change& c : sessions_.TakeChanges()) {
    if (c.online) forced_offline_.erase(c.uid);
    SendSessionEvent(c.uid, c.online);
  }
}

void Broker::SendSessionEvent(uint64_t uid, bool online) {
  ++counters_.session_events;
  spdlog::debug("broker: uid {} is now {}", uid, online ? "online" : "offline");
  codec::RequestMeta req;
  req.service = codec::ToWire(codec::Service::kPresence);
  req.command = codec::presence::kSessionEvent;
  req.uid = uid;
  codec::MapWriter w(2);
  w.Key("uid").Uint(uid);
  w.Key("online").Bool(online);
  // No edge: the reply is the broker's own and is dropped. Queued like any request
  // when no presence worker is up, and forgotten if none comes in time.
  Dispatch("", "presence", std::move(req), w.Finish(),
           Clock::now() + std::chrono::milliseconds(options_.queue_timeout_ms));
}

}  // namespace imbus::broker
