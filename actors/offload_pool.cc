#include "actors/offload_pool.h"

#include <algorithm>
#include <chrono>

namespace imbus::actors {

OffloadPool::OffloadPool(int threads, size_t max_queued) : max_queued_(max_queued) {
  threads_.reserve(static_cast<size_t>(std::max(threads, 1)));
  for (int i = 0; i < std::max(threads, 1); ++i) threads_.emplace_back([this] { Run(); });
}

OffloadPool::~OffloadPool() { Stop(); }

bool OffloadPool::TrySubmit(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || queue_.size() >= max_queued_) return false;
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

int64_t OffloadPool::RetryAfterMs() const {
  size_t queued;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued = queue_.size();
  }
  const int64_t drain_us = static_cast<int64_t>(queued) *
                           mean_job_us_.load(std::memory_order_relaxed) /
                           static_cast<int64_t>(threads_.size());
  return std::max<int64_t>(100, drain_us / 1000);
}

void OffloadPool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    queue_.clear();
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void OffloadPool::Run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    const auto start = std::chrono::steady_clock::now();
    job();
    const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::steady_clock::now() - start)
                           .count();
    // A racy update between threads only blurs a hint.
    const int64_t mean = mean_job_us_.load(std::memory_order_relaxed);
    mean_job_us_.store(mean == 0 ? us : (7 * mean + us) / 8, std::memory_order_relaxed);
  }
}

}  // namespace imbus::actors
