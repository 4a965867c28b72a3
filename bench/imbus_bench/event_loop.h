// Internal to imbus-bench. A minimal epoll loop: file descriptors with a handler
// each, level-triggered. One per thread; the bench runs everything on one thread so
// scenario state needs no locks.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace imbus::bench {

// Monotonic nanoseconds; every latency in the bench is a difference of two of these
// taken in this one process, so no clock synchronisation is involved.
int64_t NowNs();

class EventLoop {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void OnEvents(uint32_t events) = 0;
  };

  EventLoop();  // throws std::system_error when epoll is unavailable
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  void Add(int fd, uint32_t events, Handler* handler);
  void Modify(int fd, uint32_t events, Handler* handler);
  void Remove(int fd);

  // Waits up to `timeout_ms` for events and dispatches them.
  void RunOnce(int timeout_ms);

  // Runs until done() is true or `deadline_ns` passes (0: no deadline), calling
  // tick() after every round; rounds last at most `round_ms`.
  void RunUntil(const std::function<bool()>& done, int64_t deadline_ns,
                const std::function<void()>& tick, int round_ms = 5);

 private:
  int epfd_ = -1;
};

// Prints one progress line to stderr per second while a phase runs.
class Progress {
 public:
  explicit Progress(const char* phase)
      : phase_(phase), start_ns_(NowNs()), next_ns_(start_ns_ + kSecond) {}
  // Calls line() and prints its result when a second has passed since the last line.
  void Maybe(const std::function<std::string()>& line);
  double elapsed_s() const;

 private:
  static constexpr int64_t kSecond = 1'000'000'000;
  const char* phase_;
  int64_t start_ns_;
  int64_t next_ns_;
};

}  // namespace imbus::bench
