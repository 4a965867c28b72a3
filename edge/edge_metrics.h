// Internal to edge/. The edge's Prometheus metrics (docs/operations.md). Counters
// the loops already keep in EdgeStats are read at scrape time (ExportEdgeCounters);
// the per-response series and the latency histograms live in RequestMetrics, one per
// EdgeLoop, whose handles are made on first use and then cached in flat arrays (no
// lookup by label on the hot path). Everything is a no-op when metrics are off.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "edge/edge_stats.h"
#include "metrics/metrics.h"

namespace imbus::edge {

// Registers the scrape-time families over `read` (EdgeServer::Stats, thread-safe).
void ExportEdgeCounters(std::function<EdgeCounters()> read);

// The `code` of a response body ({code: N, ...} with code as the first key, as every
// imbus body writes it); -1 when the body does not start that way.
int PeekCode(std::string_view body);

class RequestMetrics {
 public:
  RequestMetrics();
  RequestMetrics(const RequestMetrics&) = delete;
  RequestMetrics& operator=(const RequestMetrics&) = delete;

  bool on() const { return on_; }
  // A response written to a client (answered here or by the broker).
  void CountResponse(uint16_t service, uint16_t command, std::string_view body);
  // A forwarded request answered in time: from its arrival to the reply.
  void ObserveLatency(uint16_t service, double seconds);

 private:
  static constexpr int kSlots = 17;  // services and commands 0..15, 16: any other
  static constexpr int kCodes = 12;  // codes 0..10, 11: unknown
  static int Slot(uint16_t v) { return v < kSlots - 1 ? v : kSlots - 1; }

  bool on_;
  std::vector<metrics::Counter> responses_;  // [service][command][code], made lazily
  std::vector<metrics::Histogram> latency_;  // [service]
};

}  // namespace imbus::edge
