// Internal to the broker. WorkerPool: the live workers by service, the pick of the
// worker with the fewest outstanding requests, and the requests in flight (by rid)
// with their deadlines. Also holds the bounded queue of requests waiting for a
// worker of their service to appear.
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
  };

  struct WorkerView {
    std::string id;
    std::vector<std::string> services;
    uint32_t outstanding = 0;
    uint64_t served = 0;
  };

  explicit WorkerPool(size_t max_queued = 100000) : max_queued_(max_queued) {}

  // Registers a worker (re-adding an id replaces its services).
  void AddWorker(const std::string& id, std::vector<std::string> services);
  // Forgets a worker and returns the requests it held, now no longer pending.
  std::vector<Pending> RemoveWorker(const std::string& id);
  bool HasWorker(const std::string& id) const { return workers_.count(id) > 0; }
  const std::vector<std::string>* ServicesOf(const std::string& id) const;

  // The worker serving `service` with the fewest outstanding requests, ties broken
  // round robin; nullopt when none serves it.
  std::optional<std::string> Pick(std::string_view service);

  uint64_t NextRid() { return ++last_rid_; }

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
  // Removes and returns the queued requests whose deadline is at or before `now`.
  std::vector<Queued> TakeExpiredQueued(Clock::time_point now);
  size_t queued_count() const { return queued_; }

  std::vector<WorkerView> Workers() const;

 private:
  struct Worker {
    std::vector<std::string> services;
    uint32_t outstanding = 0;
    uint64_t served = 0;
  };
  struct ServiceWorkers {
    std::vector<std::string> ids;  // registration order
    size_t next = 0;               // round-robin start among equals
  };

  void Release(const std::string& worker, bool served);

  size_t max_queued_;
  uint64_t last_rid_ = 0;
  std::map<std::string, Worker> workers_;
  std::unordered_map<std::string, ServiceWorkers> by_service_;
  std::unordered_map<uint64_t, Pending> pending_;
  // (deadline, rid) in send order; deadlines only grow since the timeout is fixed,
  // so expiry pops from the front. Entries of answered rids are skipped.
  std::deque<std::pair<Clock::time_point, uint64_t>> deadlines_;
  std::map<std::string, std::deque<Queued>> queue_;  // by service
  size_t queued_ = 0;
};

}  // namespace imbus::broker
