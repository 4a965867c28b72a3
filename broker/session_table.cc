#include "broker/session_table.h"

#include <algorithm>

namespace imbus::broker {

namespace {
const std::vector<SessionTable::Session> kNoSessions;
}  // namespace

std::vector<SessionTable::Session> SessionTable::Bind(const std::string& edge, uint64_t conn,
                                                      codec::SessionInfo info, bool quiet) {
  auto held = by_conn_.find(ConnKey{edge, conn});
  if (held != by_conn_.end() && held->second == info.uid) {
    for (Session& s : by_uid_[info.uid]) {
      if (s.conn == conn && s.edge == edge && s.info.device == info.device) {
        s.info = std::move(info);  // the same session again (a re-bind): no change
        return {};
      }
    }
  }
  Unbind(edge, conn);
  if (quiet) {
    touched_.try_emplace(info.uid, true);
  } else {
    Touch(info.uid);
  }
  std::vector<Session> displaced;
  std::vector<Session>& sessions = by_uid_[info.uid];
  for (auto it = sessions.begin(); it != sessions.end();) {
    if (it->info.device == info.device) {
      by_conn_.erase(ConnKey{it->edge, it->conn});
      displaced.push_back(std::move(*it));
      it = sessions.erase(it);
    } else {
      ++it;
    }
  }
  by_conn_[ConnKey{edge, conn}] = info.uid;
  sessions.push_back(Session{edge, conn, std::move(info)});
  return displaced;
}

void SessionTable::EraseFromUser(uint64_t uid, const std::string& edge, uint64_t conn) {
  Touch(uid);
  auto it = by_uid_.find(uid);
  if (it == by_uid_.end()) return;
  auto& sessions = it->second;
  std::erase_if(sessions, [&](const Session& s) { return s.conn == conn && s.edge == edge; });
  if (sessions.empty()) by_uid_.erase(it);
}

bool SessionTable::Unbind(const std::string& edge, uint64_t conn) {
  auto it = by_conn_.find(ConnKey{edge, conn});
  if (it == by_conn_.end()) return false;
  const uint64_t uid = it->second;
  by_conn_.erase(it);
  EraseFromUser(uid, edge, conn);
  return true;
}

size_t SessionTable::DropEdge(const std::string& edge) {
  auto first = by_conn_.lower_bound(ConnKey{edge, 0});
  auto last = first;
  size_t n = 0;
  while (last != by_conn_.end() && last->first.first == edge) {
    EraseFromUser(last->second, edge, last->first.second);
    ++last;
    ++n;
  }
  by_conn_.erase(first, last);
  return n;
}

std::vector<SessionTable::Session> SessionTable::RemoveUserExcept(uint64_t uid,
                                                                  const std::string& edge,
                                                                  uint64_t conn) {
  std::vector<Session> removed;
  Touch(uid);
  auto it = by_uid_.find(uid);
  if (it == by_uid_.end()) return removed;
  std::vector<Session> kept;
  for (Session& s : it->second) {
    if (s.edge == edge && s.conn == conn) {
      kept.push_back(std::move(s));
    } else {
      by_conn_.erase(ConnKey{s.edge, s.conn});
      removed.push_back(std::move(s));
    }
  }
  if (kept.empty()) {
    by_uid_.erase(it);
  } else {
    it->second = std::move(kept);
  }
  return removed;
}

const std::vector<SessionTable::Session>& SessionTable::SessionsOf(uint64_t uid) const {
  auto it = by_uid_.find(uid);
  return it == by_uid_.end() ? kNoSessions : it->second;
}

uint64_t SessionTable::UidOf(const std::string& edge, uint64_t conn) const {
  auto it = by_conn_.find(ConnKey{edge, conn});
  return it == by_conn_.end() ? 0 : it->second;
}

std::vector<SessionTable::Change> SessionTable::TakeChanges() {
  std::vector<Change> changes;
  for (const auto& [uid, was_online] : touched_) {
    const bool online = by_uid_.count(uid) > 0;
    if (online != was_online) changes.push_back(Change{uid, online});
  }
  touched_.clear();
  return changes;
}

std::vector<SessionTable::Session> SessionTable::All() const {
  std::vector<Session> out;
  out.reserve(by_conn_.size());
  for (const auto& [uid, sessions] : by_uid_)
    out.insert(out.end(), sessions.begin(), sessions.end());
  return out;
}

}  // namespace imbus::broker
