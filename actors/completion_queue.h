// Internal. CompletionQueue: how offloaded work reports back to the worker thread
// that owns its request (a BusPeer is not thread-safe, so only that thread may send
// the reply). Pool threads Post; the worker polls fd() beside its bus socket and
// takes everything posted so far with TakeAll. The fd is an eventfd, so the worker
// sleeps in poll(2) until there is something, instead of checking on a timer.
//
// Post is thread-safe; fd() and TakeAll belong to the owning worker thread.
#pragma once

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

  // Throws std::runtime_error when no eventfd can be made (a startup error).
  CompletionQueue();
  ~CompletionQueue();
  CompletionQueue(const CompletionQueue&) = delete;
  CompletionQueue& operator=(const CompletionQueue&) = delete;

  void Post(Done done);
  // Appends everything posted so far to *out and makes fd() quiet again.
  void TakeAll(std::vector<Done>* out);
  // Readable while something posted has not been taken.
  int fd() const { return fd_; }

 private:
  int fd_;
  std::mutex mu_;
  std::vector<Done> done_;  // guarded by mu_
};

}  // namespace imbus::actors
