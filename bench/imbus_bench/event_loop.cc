#include "bench/imbus_bench/event_loop.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>

namespace imbus::bench {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

EventLoop::EventLoop() : epfd_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (epfd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
}

EventLoop::~EventLoop() { ::close(epfd_); }

void EventLoop::Add(int fd, uint32_t events, Handler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    throw std::system_error(errno, std::generic_category(), "epoll_ctl ADD");
  }
}

void EventLoop::Modify(int fd, uint32_t events, Handler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
}

void EventLoop::Remove(int fd) { ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }

void EventLoop::RunOnce(int timeout_ms) {
  epoll_event events[512];
  const int n = ::epoll_wait(epfd_, events, 512, timeout_ms);
  for (int i = 0; i < n; ++i) {
    static_cast<Handler*>(events[i].data.ptr)->OnEvents(events[i].events);
  }
}

void EventLoop::RunUntil(const std::function<bool()>& done, int64_t deadline_ns,
                         const std::function<void()>& tick, int round_ms) {
  while (!done()) {
    if (deadline_ns != 0 && NowNs() >= deadline_ns) return;
    RunOnce(round_ms);
    if (tick) tick();
  }
}

void Progress::Maybe(const std::function<std::string()>& line) {
  const int64_t now = NowNs();
  if (now < next_ns_) return;
  next_ns_ = now + kSecond;
  std::fprintf(stderr, "[%s %6.1fs] %s\n", phase_, elapsed_s(), line().c_str());
}

double Progress::elapsed_s() const { return static_cast<double>(NowNs() - start_ns_) / 1e9; }

}  // namespace imbus::bench
