// Internal. BusSessions: Sessions answered by the broker over this worker's own bus
// socket (a QUERY round trip through the worker's WorkerInbox, which holds the
// messages that arrive while a lookup waits). Owned by one worker thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "actors/sessions.h"
#include "actors/worker_inbox.h"

namespace imbus::actors {

class BusSessions : public Sessions {
 public:
  // `inbox` outlives this and gets its peer before the first lookup.
  BusSessions(WorkerInbox* inbox, std::chrono::milliseconds timeout)
      : inbox_(inbox), timeout_(timeout) {}
  BusSessions(const BusSessions&) = delete;
  BusSessions& operator=(const BusSessions&) = delete;

  std::vector<codec::UserSessions> Lookup(const std::vector<uint64_t>& uids) override;

 private:
  WorkerInbox* inbox_;
  std::chrono::milliseconds timeout_;
  uint64_t next_qid_ = 1;
};

}  // namespace imbus::actors
