// Public. OffloadPool: a few threads for the work that would hold an actor worker
// thread for long (an Argon2id password hash: 50-500 ms of CPU), behind a bounded
// queue. Workers hand such work here (see Offload in service.h) so that their bus
// loop keeps sending heartbeats and serving other requests while it runs; one pool
// per process, shared by its workers. A full queue refuses at once: waiting longer
// than the broker's request timeout would only produce answers nobody reads.
//
// Thread-safe: any thread may TrySubmit. Jobs run on the pool's threads and must
// not throw. Stop (or the destructor) joins the threads; jobs still queued then are
// dropped without running.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace imbus::actors {

class OffloadPool {
 public:
  // `threads` >= 1; `max_queued` >= 1 jobs waiting (besides those running).
  OffloadPool(int threads, size_t max_queued);
  ~OffloadPool();
  OffloadPool(const OffloadPool&) = delete;
  OffloadPool& operator=(const OffloadPool&) = delete;

  // Queues `job`; false (and `job` dropped) when the queue is full or stopping.
  bool TrySubmit(std::function<void()> job);

  // What to tell a refused caller: about how long the queue takes to drain at the
  // recent mean job time (at least 100 ms).
  int64_t RetryAfterMs() const;

  void Stop();

  int threads() const { return static_cast<int>(threads_.size()); }
  size_t max_queued() const { return max_queued_; }

 private:
  void Run();

  const size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  // Moving mean of the job run time, for RetryAfterMs.
  std::atomic<int64_t> mean_job_us_{0};
  std::vector<std::thread> threads_;
};

}  // namespace imbus::actors
