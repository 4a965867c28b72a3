// Internal to the msg service. ConvTails: what one msg worker thread knows of the
// conversations it owns: each one's last (seq, ts), and the (sender, cmid) keys it
// stored lately. The broker sends every MSG/SEND of a conversation to the same
// worker while the set of workers stays the same, and says so (RequestMeta::owner)
// when nothing of it went elsewhere since, so the worker assigns seqs from memory:
// no counter row, no lock, no dedup query per message.
//
// The cache is never trusted for correctness. The messages table's primary key
// (conv, seq) and unique key (sender, cmid) are the arbiters: a worker whose tail
// is stale (another worker wrote meanwhile, after a rebalance) or that missed a
// duplicate (a resend after its owner died) collides with ER_DUP_ENTRY, forgets
// the batch's conversations and stores the batch again from what the table says.
// A tail only moves after a commit, so it is never ahead of the table: seqs stay
// gap-free. Bounded: past `capacity` conversations, the oldest tenth is dropped
// (it is reloaded from the table when needed).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace imbus::actors::msg {

class ConvTails {
 public:
  struct Tail {
    uint64_t seq = 0;  // 0: the conversation has no message yet
    int64_t ts = 0;
  };

  explicit ConvTails(size_t capacity = 200000, size_t recent_keys = 65536)
      : capacity_(capacity), recent_cap_(recent_keys) {}

  std::optional<Tail> Find(std::string_view conv) const {
    auto it = tails_.find(std::string(conv));
    if (it == tails_.end()) return std::nullopt;
    return it->second;
  }

  // After a commit (or a read of the table): `conv` ends at `tail`.
  void Set(const std::string& conv, Tail tail) {
    auto [it, inserted] = tails_.insert_or_assign(conv, tail);
    if (inserted) {
      order_.push_back(conv);
      if (tails_.size() > capacity_) Shrink();
      if (order_.size() > 2 * capacity_) Reorder();  // many forgotten and set again
    }
  }

  // After a failed or unknown commit: the table decides again.
  void Forget(const std::string& conv) { tails_.erase(conv); }

  // Whether (sender, cmid) may have been stored by this worker lately. False
  // positives are possible (a 64-bit hash) and only cost a dedup query.
  bool MaybeStored(uint64_t sender, std::string_view cmid) const {
    return recent_.count(KeyHash(sender, cmid)) > 0;
  }
  void NoteStored(uint64_t sender, std::string_view cmid) {
    const uint64_t h = KeyHash(sender, cmid);
    if (!recent_.insert(h).second) return;
    recent_order_.push_back(h);
    if (recent_order_.size() > recent_cap_) {
      recent_.erase(recent_order_.front());
      recent_order_.pop_front();
    }
  }

  size_t size() const { return tails_.size(); }

 private:
  static uint64_t KeyHash(uint64_t sender, std::string_view cmid) {
    const uint64_t h = std::hash<std::string_view>{}(cmid);
    return h ^ (sender * 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2));
  }

  // Drops the oldest tenth of the insertion order (entries already forgotten and
  // re-set count once more; the order is a bound, not an LRU).
  void Shrink() {
    size_t drop = capacity_ / 10 + 1;
    while (drop-- > 0 && !order_.empty()) {
      tails_.erase(order_.front());
      order_.pop_front();
    }
  }

  void Reorder() {
    order_.clear();
    for (const auto& [conv, tail] : tails_) order_.push_back(conv);
  }

  size_t capacity_;
  size_t recent_cap_;
  std::unordered_map<std::string, Tail> tails_;
  std::deque<std::string> order_;
  std::unordered_set<uint64_t> recent_;
  std::deque<uint64_t> recent_order_;
};

}  // namespace imbus::actors::msg
