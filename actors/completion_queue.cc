#include "actors/completion_queue.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace imbus::actors {

CompletionQueue::CompletionQueue() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
}

CompletionQueue::~CompletionQueue() { ::close(fd_); }

void CompletionQueue::Post(Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_.push_back(std::move(done));
  }
  const uint64_t one = 1;
  // Only EAGAIN (counter at its maximum) can fail here, and then it is readable anyway.
  [[maybe_unused]] const ssize_t n = ::write(fd_, &one, sizeof(one));
}

void CompletionQueue::TakeAll(std::vector<Done>* out) {
  // Reset the counter before taking: a Post after the swap below writes again, so
  // no completion is left behind a quiet fd.
  uint64_t count = 0;
  [[maybe_unused]] const ssize_t n = ::read(fd_, &count, sizeof(count));
  std::lock_guard<std::mutex> lock(mu_);
  for (Done& d : done_) out->push_back(std::move(d));
  done_.clear();
}

}  // namespace imbus::actors
