// Internal to the broker. WorkerPool: the live workers by service, the pick of the
// worker with the fewest outstanding requests, and the requests in flight (by rid)
// with their deadlines. Also holds the bounded queue of requests waiting for a
// worker of their service to appear, or for one to have room: a worker holds at
// most `max_outstanding` requests, so that overload waits here, where the broker
// can see its age and refuse at once, and not unseen in a worker's socket.
//
// Pure bookkeeping, no sockets: the broker sends what this class decides. Time is
// passed in so tests control it. Not thread-safe: owned by the broker loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "codec/bus.h"

namespace imbus::broker {

class WorkerPool {
 public:
  using Clock = std::chrono::steady_clock;

  // A request handed to a worker and not yet answered.
  struct Pending {
    uint64_t rid = 0;
    std::string edge;    // identity of the edge thread that asked
    std::string worker;  // identity of the worker holding it
    codec::RequestMeta meta;
    Clock::time_point deadline;
  };

  // A request waiting for a worker of its service.
  struct Queued {
    std::string edge;
    std::string service;
    codec::RequestMeta meta;
    std::string body;
    Clock::time_point deadline;
    Clock::time_point queued_at;  // when it joined the queue
    uint64_t key = 0;             // its route key (codec::SendRouteKey; 0: none)
    // The pool's note of the key's owner while the workers stay the same; callers
    // leave these alone.
    void* owner_slot = nullptr;
    uint64_t owner_gen = 0;
  };

  struct WorkerView {
    std::string id;
    std::vector<std::string> services;
    uint32_t outstanding = 0;
    uint64_t served = 0;
  };

  // max_outstanding: requests one worker may hold at once (0: no bound).
  explicit WorkerPool(size_t max_queued = 100000, uint32_t max_outstanding = 0)
      : max_queued_(max_queued), max_outstanding_(max_outstanding) {}

  // Registers a worker (re-adding an id replaces its services).
  void AddWorker(const std::string& id, std::vector<std::string> services);
  // Forgets a worker and returns the requests it held, now no longer pending.
  std::vector<Pending> RemoveWorker(const std::string& id);
  bool HasWorker(const std::string& id) const { return workers_.count(id) > 0; }
  const std::vector<std::string>* ServicesOf(const std::string& id) const;

  // The worker serving `service` with the fewest outstanding requests, ties broken
  // round robin; nullopt when none serves it or every one holds max_outstanding.
  // With a non-zero `key` (a conversation, codec::SendRouteKey): the worker that owns
  // the key by rendezvous hashing over the live workers of the service, so one key
  // stays with one worker while they stay the same, and only the keys of a worker
  // that leaves or the share of one that joins move. nullopt when every worker
  // holds max_outstanding, as without a key, and when the owner holds twice that,
  // even if other workers have room: the key waits in the queue for its owner.
  // Given to another worker, its conversation would be written by two at once, and
  // each collision costs a batch of up to 256 messages stored twice.
  std::optional<std::string> Pick(std::string_view service, uint64_t key = 0);
  // True when at least one live worker serves `service` (full or not).
  bool Serves(std::string_view service) const;
  // True when a live worker of `service` holds fewer than max_outstanding requests.
  bool HasRoom(std::string_view service) const;

  uint64_t NextRid() { return ++last_rid_; }

  // Records that `key`'s request goes to `worker` and says whether that worker also
  // got the key's previous request (RequestMeta::owner). A worker that left and came
  // back counts as another worker. Remembers keys in a direct-mapped table of
  // kKeySlots: a key whose slot another key took since is answered false (the cost
  // is one database read for that key), never true by mistake.
  bool NoteKeyed(uint64_t key, const std::string& worker);
  static constexpr size_t kKeySlots = 1 << 18;  // 4 MiB, touched as keys arrive

  // Records a request sent to `p.worker` (counted as outstanding).
  void AddPending(Pending p);
  // Removes and returns the request `rid` (its reply arrived); nullopt when it was
  // already answered (a late reply). Counts the reply as served by the worker.
  std::optional<Pending> TakePending(uint64_t rid);
  const Pending* FindPending(uint64_t rid) const;
  // Removes and returns the requests whose deadline is at or before `now`.
  std::vector<Pending> TakeExpired(Clock::time_point now);
  size_t pending_count() const { return pending_.size(); }

  // Queues a request for later; false when the queue is full.
  bool Enqueue(Queued q);
  // The oldest request queued for `service`, removed; nullopt when none.
  std::optional<Queued> PopQueued(const std::string& service);
  // The requests queued for `service` that can go now, in queue order, removed from
  // the queue, each with the worker Pick gives it (counting the ones taken before
  // it; the caller sends them and records them with AddPending). A keyed request
  // whose owner is full stays queued, and so do the later ones of its key (its
  // owner stays full for the rest of the walk), without holding up the requests of
  // other owners behind it. The walk ends when no worker has room, at an unkeyed
  // request no worker can take, or after kMaxSkipped requests left queued (so a
  // deep queue for one full owner costs each drain a bounded look). No walk at all
  // while nothing that could let a request go has happened since the last one (a
  // reply or expiry, a worker joining or leaving, an unkeyed request queued).
  std::vector<std::pair<Queued, std::string>> TakeDispatchable(const std::string& service);
  static constexpr size_t kMaxSkipped = 16384;
  // True when a request with route key `key` is queued: a new one must queue
  // behind it, so that the key's requests reach its owner in order.
  bool KeyQueued(uint64_t key) const { return queued_keys_.count(key) > 0; }
  // Removes and returns the queued requests whose deadline is at or before `now`.
  // Deadlines are not in queue order (each request carries its own), so this scans
  // the queues: they are short, being bounded by time.
  std::vector<Queued> TakeExpiredQueued(Clock::time_point now);
  size_t queued_count() const { return queued_; }
  size_t QueuedFor(const std::string& service) const;
  // When the oldest request queued for `service` joined the queue; nullopt: none.
  std::optional<Clock::time_point> OldestQueuedAt(const std::string& service) const;
  // The services that have requests queued.
  std::vector<std::string> QueuedServices() const;

  std::vector<WorkerView> Workers() const;

 private:
  struct Worker {
    uint64_t id_hash = 0;  // for rendezvous hashing
    uint64_t serial = 0;   // new for every AddWorker of an unknown id
    std::vector<std::string> services;
    uint32_t outstanding = 0;
    uint64_t served = 0;
  };
  struct ServiceWorkers {
    std::vector<std::string> ids;       // registration order
    size_t next = 0;                    // round-robin start among equals
    uint64_t walked_at = ~uint64_t{0};  // room_changes_ at the last queue walk
  };

  void Release(const std::string& worker, bool served);
  using WorkerMap = std::map<std::string, Worker>;
  std::optional<std::string> PickIn(ServiceWorkers& sw, uint64_t key);
  std::optional<std::string> PickOwner(ServiceWorkers& sw, uint64_t key);
  // The key's owner by rendezvous hashing, full or not; end() when none.
  WorkerMap::iterator OwnerOf(const ServiceWorkers& sw, uint64_t key);
  // An owner takes its keys up to twice max_outstanding.
  bool OwnerFull(const Worker& w) const;
  bool AnyRoom(const ServiceWorkers& sw) const;
  void ForgetQueuedKey(uint64_t key);

  struct KeySlot {
    uint64_t key = 0;     // 0: empty (a route key is never 0)
    uint64_t serial = 0;  // of the worker that got the key's last request
  };
  size_t max_queued_;
  uint32_t max_outstanding_;
  uint64_t last_serial_ = 0;
  std::vector<KeySlot> key_slots_;  // sized on the first keyed request
  uint64_t last_rid_ = 0;
  WorkerMap workers_;  // nodes stay put: Queued::owner_slot points at them
  std::unordered_map<std::string, ServiceWorkers> by_service_;
  std::unordered_map<uint64_t, Pending> pending_;
  // (deadline, rid) in send order; deadlines only grow since the timeout is fixed,
  // so expiry pops from the front. Entries of answered rids are skipped.
  std::deque<std::pair<Clock::time_point, uint64_t>> deadlines_;
  std::map<std::string, std::deque<Queued>> queue_;  // by service
  size_t queued_ = 0;
  std::unordered_map<uint64_t, uint32_t> queued_keys_;  // route key -> requests queued
  // Counts what can let a queued request go: a reply or expiry (room), a worker
  // joining or leaving (owners), an unkeyed request queued.
  uint64_t room_changes_ = 0;
  uint64_t workers_gen_ = 1;  // changes when a worker joins or leaves (owners move)
};

}  // namespace imbus::broker
