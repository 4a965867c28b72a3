// Internal to edge/. RequestTracker: the requests an edge thread forwarded to the
// broker and not yet answered, with their deadlines, so that every request gets
// exactly one response even when the broker loses it (UNAVAILABLE at the deadline,
// the late reply dropped). One per EdgeLoop; not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <unordered_map>

namespace imbus::edge {

class RequestTracker {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RequestTracker(std::chrono::milliseconds timeout) : timeout_(timeout) {}

  // What the UNAVAILABLE answer at the deadline needs.
  struct Request {
    uint64_t conn;
    uint32_t seq;
    uint16_t service;
    uint16_t command;
  };

  void Add(const Request& r, Clock::time_point now);
  // True when (conn, seq) was outstanding: the reply is the answer. False: it was
  // already answered (timed out) or never asked; drop it. `started`, when given and
  // true is returned: the `now` the request was added with.
  bool Complete(uint64_t conn, uint32_t seq, Clock::time_point* started = nullptr);
  // Calls expired(request) once for every outstanding request past its deadline.
  void Expire(Clock::time_point now, const std::function<void(const Request&)>& expired);
  // Calls lost(request) once for every outstanding request and forgets them all (the
  // broker that held them is gone; their late replies are dropped like any other).
  void FailAll(const std::function<void(const Request&)>& lost);
  size_t outstanding() const { return pending_.size(); }

 private:
  struct Key {
    uint64_t conn;
    uint32_t seq;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return static_cast<size_t>(k.conn * 0x9E3779B97F4A7C15ull) ^ k.seq;
    }
  };
  struct Pending {
    uint64_t serial;
    Clock::time_point start;
  };
  struct Deadline {
    Clock::time_point at;
    Request request;
    uint64_t serial;
  };

  std::chrono::milliseconds timeout_;
  // Requests in flight, each with its serial number. A client may reuse a seq while
  // the first is in flight: the serial keeps their deadlines apart.
  std::unordered_multimap<Key, Pending, KeyHash> pending_;
  // Deadlines in arrival order; the timeout is fixed, so this is sorted.
  std::deque<Deadline> deadlines_;
  uint64_t next_serial_ = 0;
};

}  // namespace imbus::edge
