#include "actors/completion_queue.h"

namespace imbus::actors {

void CompletionQueue::Post(Done done) {
  std::lock_guard<std::mutex> lock(mu_);
  done_.push_back(std::move(done));
  any_.store(true, std::memory_order_release);
}

void CompletionQueue::TakeAll(std::vector<Done>* out) {
  if (!any_.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (Done& d : done_) out->push_back(std::move(d));
  done_.clear();
  any_.store(false, std::memory_order_relaxed);
}

}  // namespace imbus::actors
