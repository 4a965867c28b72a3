#include "actors/worker_inbox.h"

namespace imbus::actors {

bool WorkerInbox::Next(bus::BusMessage* out) {
  if (!held_.empty()) {
    *out = std::move(held_.front());
    held_.pop_front();
    return true;
  }
  return peer_ != nullptr && peer_->TryRecv(out);
}

bool WorkerInbox::ReadUntil(codec::BusType type, const std::function<bool(bus::BusMessage&)>& take,
                            std::chrono::steady_clock::time_point deadline) {
  if (peer_ == nullptr) return false;
  bus::BusMessage msg;
  for (;;) {
    while (peer_->TryRecv(&msg)) {
      if (msg.type != type) {
        held_.push_back(std::move(msg));
      } else if (take(msg)) {
        return true;
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    peer_->WaitReadable(static_cast<int>(left.count()));
  }
}

}  // namespace imbus::actors
