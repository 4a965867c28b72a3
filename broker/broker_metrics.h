// Internal to broker/. BrokerMetrics: the broker's Prometheus metrics
// (docs/operations.md). The loop thread updates the per-service request counters
// and the dispatch-to-reply histograms through cached handles, and publishes a
// snapshot of its counters and tables every kPublishEvery; the exposer thread reads
// the latest snapshot at scrape time (the tables themselves are loop-only). All a
// no-op when metrics are off.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "metrics/metrics.h"

namespace imbus::broker {

class BrokerMetrics {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kPublishEvery{250};

  struct ServiceView {
    std::string name;
    uint32_t workers = 0;
    uint64_t outstanding = 0;  // requests held by its workers
    uint64_t queued = 0;       // waiting in the broker for a worker
  };
  struct Snapshot {
    Counters counters;
    uint64_t refused_peers = 0;
    uint64_t sessions = 0;
    uint64_t users = 0;
    uint64_t edges = 0;  // edge threads
    uint64_t workers = 0;
    uint64_t in_flight = 0;
    std::string ha_state;
    std::vector<ServiceView> services;
  };

  BrokerMetrics();
  BrokerMetrics(const BrokerMetrics&) = delete;
  BrokerMetrics& operator=(const BrokerMetrics&) = delete;

  bool on() const { return on_; }
  void CountRequest(uint16_t service);
  // A worker's reply arrived `seconds` after the request was sent to it.
  void ObserveReply(uint16_t service, double seconds);
  // True (and the next time set) when a snapshot is due.
  bool Due(Clock::time_point now);
  void Publish(Snapshot s);

 private:
  static constexpr int kSlots = 17;  // services 0..15, 16: any other
  static int Slot(uint16_t v) { return v < kSlots - 1 ? v : kSlots - 1; }
  struct Shared {
    std::mutex mu;
    Snapshot snapshot;
  };

  bool on_;
  Clock::time_point next_publish_{};
  std::shared_ptr<Shared> shared_;           // also held by the scrape callbacks
  std::vector<metrics::Counter> requests_;   // [service slot], made lazily
  std::vector<metrics::Histogram> latency_;  // [service slot]
};

}  // namespace imbus::broker
