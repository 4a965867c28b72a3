// Internal. BusSessions: Sessions answered by the broker over this worker's own bus
// socket (QUERY round trip). Messages that arrive while a lookup waits (other
// requests) are kept in order and handed back by Next(). Owned by one worker thread.
#pragma once

#include <chrono>
#include <deque>

#include "actors/sessions.h"
#include "bus/peer.h"

namespace imbus::actors {

class BusSessions : public Sessions {
 public:
  explicit BusSessions(std::chrono::milliseconds timeout) : timeout_(timeout) {}
  BusSessions(const BusSessions&) = delete;
  BusSessions& operator=(const BusSessions&) = delete;

  // The worker's peer; set once the worker thread has made it.
  void set_peer(bus::BusPeer* peer) { peer_ = peer; }

  std::vector<codec::UserSessions> Lookup(const std::vector<uint64_t>& uids) override;

  // The next message for the worker: deferred ones first, then the socket.
  bool Next(bus::BusMessage* out);

 private:
  bus::BusPeer* peer_ = nullptr;
  std::chrono::milliseconds timeout_;
  std::deque<bus::BusMessage> deferred_;
  uint64_t next_qid_ = 1;
};

}  // namespace imbus::actors
