// Public. PresenceService: PROTOCOL.md service 4 (IS_ONLINE, PEER_ADDR with the
// P2P_INCOMING push, STATUS pushes on the broker's internal SESSION_EVENT). Online
// state is never cached here: every answer asks the broker's session table
// (Sessions), so a presence worker started at runtime is right at once. Friendships
// come from the DirectoryStore. One instance per worker thread.
//
// Choices where PROTOCOL.md is silent:
// - IS_ONLINE / PEER_ADDR for a uid that is not a live user: NOT_FOUND; for a live
//   user who is not a friend: FORBIDDEN (issue 18; --immediate-friends: answered,
//   but offline when that user blocks the caller); PEER_ADDR to yourself: BAD_REQUEST.
// - PEER_ADDR with several devices online picks the target's most recent session.
// - A `local` address is given only when that session declared both local_host and
//   p2p_port at LOGIN, and the local_host is UTF-8; `public` whenever the edge saw
//   an address.
#pragma once

#include <memory>
#include <string>

#include "actors/directory/directory_store.h"
#include "actors/service.h"
#include "actors/sessions.h"

namespace imbus::actors {

class PresenceService : public Service {
 public:
  struct Options {
    // Legacy (--immediate-friends): IS_ONLINE and PEER_ADDR answer about anyone who
    // does not block the caller; otherwise only about friends (issue 18).
    bool immediate_friends = false;
  };
  PresenceService(std::unique_ptr<DirectoryStore> store, Sessions* sessions, Options options);
  PresenceService(std::unique_ptr<DirectoryStore> store, Sessions* sessions)
      : PresenceService(std::move(store), sessions, Options{}) {}

  static constexpr size_t kTicketBytes = 16;  // 32 hex characters

 private:
  void IsOnline(const Request& req, Reply* reply);
  void PeerAddr(const Request& req, Reply* reply);
  void SessionEvent(const Request& req, Reply* reply);

  // NOT_FOUND unless `uid` is a live user.
  void RequireUser(uint64_t uid);
  // Whether `caller` may see `uid`'s presence: friends (or, with immediate_friends,
  // anyone who does not block the caller). NOT_FOUND for no user; FORBIDDEN for a
  // live user who is not a friend.
  bool MaySee(uint64_t caller, uint64_t uid);

  std::unique_ptr<DirectoryStore> store_;
  Sessions* sessions_;  // not owned; the worker's
  Options options_;
};

// A fresh random ticket (libsodium randombytes), hex.
std::string NewTicket();

}  // namespace imbus::actors
