#include "edge/request_tracker.h"

namespace imbus::edge {

void RequestTracker::Add(const Request& r, Clock::time_point now) {
  const uint64_t serial = next_serial_++;
  pending_.emplace(Key{r.conn, r.seq}, Pending{serial, now});
  deadlines_.push_back(Deadline{now + timeout_, r, serial});
}

bool RequestTracker::Complete(uint64_t conn, uint32_t seq, Clock::time_point* started) {
  auto [first, last] = pending_.equal_range(Key{conn, seq});
  if (first == last) return false;
  // Replies to a reused seq are taken oldest first.
  auto oldest = first;
  for (auto it = first; it != last; ++it) {
    if (it->second.serial < oldest->second.serial) oldest = it;
  }
  if (started != nullptr) *started = oldest->second.start;
  pending_.erase(oldest);
  // Its deadline entry stays in the deque and is skipped when it comes up.
  return true;
}

void RequestTracker::Expire(Clock::time_point now,
                            const std::function<void(const Request&)>& expired) {
  while (!deadlines_.empty() && deadlines_.front().at <= now) {
    const Deadline d = deadlines_.front();
    deadlines_.pop_front();
    auto [first, last] = pending_.equal_range(Key{d.request.conn, d.request.seq});
    for (auto it = first; it != last; ++it) {
      if (it->second.serial == d.serial) {
        pending_.erase(it);
        expired(d.request);
        break;
      }
    }
  }
}

void RequestTracker::FailAll(const std::function<void(const Request&)>& lost) {
  // In arrival order, skipping the entries of requests already answered.
  std::deque<Deadline> deadlines;
  deadlines.swap(deadlines_);
  for (const Deadline& d : deadlines) {
    auto [first, last] = pending_.equal_range(Key{d.request.conn, d.request.seq});
    for (auto it = first; it != last; ++it) {
      if (it->second.serial == d.serial) {
        pending_.erase(it);
        lost(d.request);
        break;
      }
    }
  }
  pending_.clear();
}

}  // namespace imbus::edge
