// Public. Sessions: a service's window on the broker's session table, the one truth
// about who is online and where. Lookups go to the broker every time (no cache that
// could drift), so a worker started a second ago answers as correctly as an old one.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "codec/bus.h"

namespace imbus::actors {

// Thrown when the broker does not answer a lookup in time; the host answers the
// request UNAVAILABLE.
class SessionsUnavailable : public std::runtime_error {
 public:
  explicit SessionsUnavailable(const std::string& what) : std::runtime_error(what) {}
};

class Sessions {
 public:
  virtual ~Sessions() = default;
  // The live sessions of each uid, in the order given (empty sessions: offline).
  virtual std::vector<codec::UserSessions> Lookup(const std::vector<uint64_t>& uids) = 0;

  // Convenience: online flags in the order given.
  std::vector<bool> Online(const std::vector<uint64_t>& uids) {
    std::vector<bool> out;
    out.reserve(uids.size());
    for (const codec::UserSessions& u : Lookup(uids)) out.push_back(!u.sessions.empty());
    return out;
  }
};

// In-memory Sessions for logic tests: a test sets who is online.
class MemorySessions : public Sessions {
 public:
  void Set(uint64_t uid, std::vector<codec::SessionInfo> sessions) {
    table_[uid] = std::move(sessions);
  }
  std::vector<codec::UserSessions> Lookup(const std::vector<uint64_t>& uids) override {
    std::vector<codec::UserSessions> out;
    for (uint64_t uid : uids) {
      codec::UserSessions u;
      u.uid = uid;
      auto it = table_.find(uid);
      if (it != table_.end()) u.sessions = it->second;
      out.push_back(std::move(u));
    }
    return out;
  }

 private:
  std::map<uint64_t, std::vector<codec::SessionInfo>> table_;
};

}  // namespace imbus::actors
