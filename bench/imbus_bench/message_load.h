// Internal to imbus-bench. Drives MSG/SEND load over a logged-in Fleet and checks
// delivery: every message gets a cmid "<nonce>-<index>" that names its record, so a
// MSG/MESSAGE push is matched to its send time (end-to-end latency, one clock) and
// to the recipients it was meant for (exactly-once check). Direct mode: each sender
// writes to a random other user, or with `contacts` K to one of K fixed others
// (chosen once per user from the seed and its fleet index). Group mode: the senders post to one
// group and every other member must receive each message once. Pacing: open loop at `rate`
// messages/s in total (latency counted from the scheduled send time, so a stalled server shows as
// latency, not as a lower rate) or closed loop with `window` messages in flight per sender. A busy
// server's RATE_LIMITED is a retry-after, not a failure: while sending, the message goes again
// (same cmid) after `retry_ms` (times 1 to 2, at random, so that retries spread), still timed from
// its first send. Open loop: a due retry takes the next send slot instead of a new message, so
// `rate` counts retries too and the offered load stays what was asked. Server cost: the CPU time of
// `cpu_pids` over the send phase, per message acked in it.
#pragma once

#include <cstdint>
#include <functional>
#include <queue>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bench/imbus_bench/fleet.h"
#include "bench/imbus_bench/histogram.h"
#include "bench/imbus_bench/report.h"

namespace imbus::bench {

struct MessageLoadOptions {
  double rate = 0;
  size_t window = 1;
  size_t text_bytes = 32;
  double duration_s = 10;
  double drain_s = 5;
  uint64_t seed = 1;
  uint64_t gid = 0;           // group mode when not 0
  size_t contacts = 0;        // direct mode: fixed recipients per sender; 0 = anyone
  double deadline_ms = 1000;  // acks within this (from the scheduled send) are "in deadline"
  std::vector<std::pair<std::string, int>> cpu_pids;  // (name, pid) of server processes
};

class MessageLoad {
 public:
  // `senders` are fleet indices. In group mode every fleet connection is a member.
  MessageLoad(Fleet* fleet, EventLoop* loop, MessageLoadOptions options,
              std::vector<size_t> senders);
  MessageLoad(const MessageLoad&) = delete;
  MessageLoad& operator=(const MessageLoad&) = delete;

  // Sends for duration_s, then waits up to drain_s for answers and deliveries.
  void Run();
  // Adds the figures and histograms; true when nothing was lost or duplicated.
  bool Fill(Report* report) const;

 private:
  struct Msg {
    int64_t sent_ns = 0;   // scheduled (open loop) or actual (closed loop) send time
    int64_t acked_ns = 0;  // 0: not acked (yet)
    uint32_t sender = 0;
    uint32_t to = 0;  // direct mode: recipient index
    uint32_t delivered = 0;
    bool answered = false;
    bool failed = false;
  };

  void Send(size_t sender, int64_t scheduled_ns);
  // Sends message `index` (again: same cmid and recipient).
  void Issue(size_t index);
  // Sends again up to `max` messages whose retry time has come.
  void RetryDue(int64_t now_ns, size_t max = SIZE_MAX);
  void OnPush(size_t recipient, const codec::Body& body);
  bool Settled() const;
  std::vector<int64_t> SampleCpu() const;
  uint32_t expected() const { return options_.gid ? static_cast<uint32_t>(fleet_->size() - 1) : 1; }

  Fleet* fleet_;
  EventLoop* loop_;
  MessageLoadOptions options_;
  std::vector<size_t> senders_;
  std::vector<std::vector<uint32_t>> contacts_;  // per fleet index, when options_.contacts
  std::string text_;
  std::string nonce_;
  std::mt19937_64 rng_;
  bool sending_ = false;
  std::vector<Msg> msgs_;
  std::vector<uint64_t> seen_;  // group mode: one bit per (message, member)
  size_t words_per_msg_ = 0;

  uint64_t answered_ = 0, acked_ = 0, errors_ = 0, conn_lost_ = 0;
  uint64_t busy_ = 0;     // RATE_LIMITED answers (each retried while sending)
  uint64_t refused_ = 0;  // messages still RATE_LIMITED when the sending ended
  // (due time, message index) of the messages to send again.
  std::priority_queue<std::pair<int64_t, size_t>, std::vector<std::pair<int64_t, size_t>>,
                      std::greater<>>
      retries_;
  uint64_t in_deadline_ = 0;      // acked within deadline_ms
  uint64_t acked_in_window_ = 0;  // acked before the send phase ended
  std::vector<int64_t> cpu_start_us_, cpu_end_us_;
  uint64_t deliveries_ = 0, duplicates_ = 0, misrouted_ = 0, foreign_ = 0;
  uint64_t fully_delivered_ = 0;
  std::string last_error_;
  double send_phase_s_ = 0;
  double total_s_ = 0;
  Histogram ack_ns_, delivery_ns_, all_members_ns_;
};

}  // namespace imbus::bench
