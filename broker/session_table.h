// Internal to the broker. SessionTable: who is logged in where. Maps a user to the
// client connections holding a session, each named by the edge thread's bus
// identity and the edge's connection id, and back.
//
// Invariants: a connection holds at most one session; at most one connection holds
// a given (uid, device) — Bind() removes and returns the one it displaces so the
// caller can KICK it. Not thread-safe: owned by the broker loop.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "codec/bus.h"

namespace imbus::broker {

class SessionTable {
 public:
  struct Session {
    std::string edge;  // bus identity of the edge thread owning the connection
    uint64_t conn = 0;
    codec::SessionInfo info;
  };

  // Binds (edge, conn) to `info`, replacing what that connection held. Every other
  // connection holding the same (uid, device) is removed and returned (to be kicked).
  // Re-binding a connection to the user and device it holds only refreshes the info:
  // no change, nothing displaced. `quiet`: the user is known to have been online
  // already (a session carried over from a previous broker), so its first session
  // here is no change either (TakeChanges does not report it).
  std::vector<Session> Bind(const std::string& edge, uint64_t conn, codec::SessionInfo info,
                            bool quiet = false);

  // Forgets the connection's session. Idempotent: false if it held none.
  bool Unbind(const std::string& edge, uint64_t conn);

  // Forgets every session of an edge thread (it died). Returns how many.
  size_t DropEdge(const std::string& edge);

  // Removes every session of `uid` except the connection (edge, conn) and returns
  // them (DELETE_ACCOUNT kicks).
  std::vector<Session> RemoveUserExcept(uint64_t uid, const std::string& edge, uint64_t conn);

  // The sessions of a user; empty when offline. Valid until the next mutation.
  const std::vector<Session>& SessionsOf(uint64_t uid) const;

  // Every session (imbus-ctl's broadcast, kick by name, drain).
  std::vector<Session> All() const;
  // The uid bound to (edge, conn), or 0.
  uint64_t UidOf(const std::string& edge, uint64_t conn) const;

  // Users whose online state changed (first session came, last one went) since the
  // last call, with their state now. A user who went and came back within one
  // batch of mutations (a same-device re-login) is not reported.
  struct Change {
    uint64_t uid;
    bool online;
  };
  std::vector<Change> TakeChanges();

  size_t size() const { return by_conn_.size(); }
  size_t users() const { return by_uid_.size(); }

 private:
  using ConnKey = std::pair<std::string, uint64_t>;

  void EraseFromUser(uint64_t uid, const std::string& edge, uint64_t conn);
  // Records the user's online state before the first mutation since TakeChanges().
  void Touch(uint64_t uid) { touched_.try_emplace(uid, by_uid_.count(uid) > 0); }

  std::unordered_map<uint64_t, std::vector<Session>> by_uid_;
  // Ordered so that all connections of one edge are a contiguous range (DropEdge).
  std::map<ConnKey, uint64_t> by_conn_;
  std::unordered_map<uint64_t, bool> touched_;  // uid -> online before
};

}  // namespace imbus::broker
