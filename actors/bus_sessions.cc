#include "actors/bus_sessions.h"

#include <spdlog/spdlog.h>

namespace imbus::actors {

std::vector<codec::UserSessions> BusSessions::Lookup(const std::vector<uint64_t>& uids) {
  if (uids.empty()) return {};
  if (peer_ == nullptr) throw SessionsUnavailable("no broker connection");
  codec::QueryMeta q;
  q.qid = next_qid_++;
  q.uids = uids;
  if (!peer_->Send(codec::BusType::kQuery, codec::PackMeta(q))) {
    throw SessionsUnavailable("could not ask the broker for sessions");
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  bus::BusMessage msg;
  for (;;) {
    while (peer_->TryRecv(&msg)) {
      if (msg.type == codec::BusType::kQuery) {
        codec::QueryReplyMeta r;
        if (codec::UnpackMeta(msg.meta, &r) && r.qid == q.qid && r.users.size() == uids.size()) {
          return std::move(r.users);
        }
        continue;  // an answer to a lookup that already timed out
      }
      deferred_.push_back(std::move(msg));
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    peer_->WaitReadable(static_cast<int>(left.count()));
  }
  spdlog::warn("sessions: the broker did not answer a lookup of {} users within {} ms", uids.size(),
               timeout_.count());
  throw SessionsUnavailable("the broker did not answer a session lookup");
}

bool BusSessions::Next(bus::BusMessage* out) {
  if (!deferred_.empty()) {
    *out = std::move(deferred_.front());
    deferred_.pop_front();
    return true;
  }
  return peer_ != nullptr && peer_->TryRecv(out);
}

}  // namespace imbus::actors
