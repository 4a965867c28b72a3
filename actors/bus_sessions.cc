#include "actors/bus_sessions.h"

#include <spdlog/spdlog.h>

namespace imbus::actors {

std::vector<codec::UserSessions> BusSessions::Lookup(const std::vector<uint64_t>& uids) {
  if (uids.empty()) return {};
  bus::BusPeer* peer = inbox_->peer();
  if (peer == nullptr) throw SessionsUnavailable("no broker connection");
  codec::QueryMeta q;
  q.qid = next_qid_++;
  q.uids = uids;
  if (!peer->Send(codec::BusType::kQuery, codec::PackMeta(q))) {
    throw SessionsUnavailable("could not ask the broker for sessions");
  }
  std::vector<codec::UserSessions> users;
  // An answer to a lookup that already timed out is declined (and dropped).
  const bool answered = inbox_->ReadUntil(
      codec::BusType::kQuery,
      [&](bus::BusMessage& msg) {
        codec::QueryReplyMeta r;
        if (!codec::UnpackMeta(msg.meta, &r) || r.qid != q.qid || r.users.size() != uids.size()) {
          return false;
        }
        users = std::move(r.users);
        return true;
      },
      std::chrono::steady_clock::now() + timeout_);
  if (answered) return users;
  spdlog::warn("sessions: the broker did not answer a lookup of {} users within {} ms", uids.size(),
               timeout_.count());
  throw SessionsUnavailable("the broker did not answer a session lookup");
}

}  // namespace imbus::actors
