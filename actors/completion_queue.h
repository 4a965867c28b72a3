// Internal. CompletionQueue: how offloaded work reports back to the worker thread
// that owns its request (a BusPeer is not thread-safe, so only that thread may send
// the reply). Pool threads Post; the worker takes everything posted so far with
// TakeAll on each turn of its loop.
//
// Post is thread-safe; TakeAll belongs to the owning worker thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <vector>

namespace imbus::actors {

class CompletionQueue {
 public:
  struct Done {
    uint64_t id = 0;
    std::exception_ptr error;  // what the work threw, if anything
  };

  CompletionQueue() = default;
  CompletionQueue(const CompletionQueue&) = delete;
  CompletionQueue& operator=(const CompletionQueue&) = delete;

  void Post(Done done);
  // Appends everything posted so far to *out. Cheap when nothing was posted (no
  // lock), since the worker calls it on every turn.
  void TakeAll(std::vector<Done>* out);

 private:
  std::mutex mu_;
  std::vector<Done> done_;        // guarded by mu_
  std::atomic<bool> any_{false};  // done_ is not empty
};

}  // namespace imbus::actors
