// Internal. WorkerInbox: what a worker thread reads from its bus socket, in order.
// A synchronous round trip to the broker in the middle of a batch (BusSessions'
// QUERY) reads on until its answer comes; the messages read meanwhile (other
// requests) are held here and handed out by Next() before the socket's. Owned by
// one worker thread.
#pragma once

#include <chrono>
#include <deque>
#include <functional>

#include "bus/peer.h"
#include "codec/bus.h"

namespace imbus::actors {

class WorkerInbox {
 public:
  WorkerInbox() = default;
  WorkerInbox(const WorkerInbox&) = delete;
  WorkerInbox& operator=(const WorkerInbox&) = delete;

  // The worker's peer; set once the worker thread has made it (null before).
  void set_peer(bus::BusPeer* peer) { peer_ = peer; }
  bus::BusPeer* peer() const { return peer_; }

  // The next message for the worker: held ones first, then the socket.
  bool Next(bus::BusMessage* out);

  // Reads the socket until `take` returns true for a message of type `type` or
  // `deadline` passes (false then). Messages of `type` that `take` declines are
  // dropped (stale answers); all others are held for Next, in order.
  bool ReadUntil(codec::BusType type, const std::function<bool(bus::BusMessage&)>& take,
                 std::chrono::steady_clock::time_point deadline);

 private:
  bus::BusPeer* peer_ = nullptr;
  std::deque<bus::BusMessage> held_;
};

}  // namespace imbus::actors
