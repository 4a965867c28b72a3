#include "broker/broker_metrics.h"

#include <functional>
#include <utility>

#include "codec/commands.h"

namespace imbus::broker {
namespace {

using metrics::Sample;
using metrics::Type;

std::string ServiceLabel(uint16_t service, bool other) {
  const char* name = other ? nullptr : codec::ServiceName(service);
  return name != nullptr ? name : "unknown";
}

}  // namespace

BrokerMetrics::BrokerMetrics() : on_(metrics::Enabled()) {
  if (!on_) return;
  requests_.resize(kSlots);
  latency_.resize(kSlots);
  shared_ = std::make_shared<Shared>();
  std::shared_ptr<Shared> shared = shared_;
  // One value of the snapshot as a family without labels.
  auto add = [shared](const char* name, const char* help, Type type,
                      std::function<double(const Snapshot&)> get) {
    metrics::AddCallback(name, help, type, [shared, get] {
      std::lock_guard<std::mutex> lock(shared->mu);
      return std::vector<Sample>{{{}, get(shared->snapshot)}};
    });
  };
  auto counter = [&](const char* name, const char* help, uint64_t Counters::*field) {
    add(name, help, Type::kCounter,
        [field](const Snapshot& s) { return static_cast<double>(s.counters.*field); });
  };
  counter("imbus_broker_requests_received_total", "REQUESTs received from edges.",
          &Counters::requests);
  counter("imbus_broker_replies_total", "REPLYs forwarded to edges.", &Counters::replies);
  counter("imbus_broker_unavailable_total", "UNAVAILABLE answers the broker made.",
          &Counters::unavailable);
  counter("imbus_broker_late_replies_total", "Worker replies for requests already answered.",
          &Counters::late_replies);
  counter("imbus_broker_pushes_total", "PUSH messages sent to edges.", &Counters::pushes);
  counter("imbus_broker_kicks_total", "Sessions kicked.", &Counters::kicks);
  counter("imbus_broker_send_failures_total", "Bus sends that failed (peer gone or full).",
          &Counters::send_failures);
  counter("imbus_broker_malformed_total", "Bus messages that did not parse.", &Counters::malformed);
  counter("imbus_broker_busy_total",
          "Requests refused at once (RATE_LIMITED): their service's queue was full of wait.",
          &Counters::busy);
  counter("imbus_broker_expired_total", "Requests whose deadline passed while queued.",
          &Counters::expired);
  counter("imbus_broker_session_events_total", "Online/offline transitions sent to presence.",
          &Counters::session_events);
  counter("imbus_broker_not_active_total", "Messages a passive broker turned away.",
          &Counters::not_active);
  metrics::AddCallback(
      "imbus_broker_rate_limited_total",
      "Requests refused by the per-user limits, by limit (user_rate, "
      "user_send_rate).",
      Type::kCounter, [shared] {
        std::lock_guard<std::mutex> lock(shared->mu);
        const Counters& c = shared->snapshot.counters;
        return std::vector<Sample>{
            {{{"limit", "user_rate"}}, static_cast<double>(c.rate_limited)},
            {{{"limit", "user_send_rate"}}, static_cast<double>(c.rate_limited_send)},
        };
      });
  add("imbus_broker_refused_peers_total", "Bus peers refused by CURVE.", Type::kCounter,
      [](const Snapshot& s) { return static_cast<double>(s.refused_peers); });
  add("imbus_broker_sessions", "Client sessions (logged-in connections) in the table.",
      Type::kGauge, [](const Snapshot& s) { return static_cast<double>(s.sessions); });
  add("imbus_broker_users_online", "Users with at least one session.", Type::kGauge,
      [](const Snapshot& s) { return static_cast<double>(s.users); });
  add("imbus_broker_edges", "Edge threads registered.", Type::kGauge,
      [](const Snapshot& s) { return static_cast<double>(s.edges); });
  add("imbus_broker_in_flight", "Requests held by workers, not yet answered.", Type::kGauge,
      [](const Snapshot& s) { return static_cast<double>(s.in_flight); });
  // Per service: workers, their outstanding requests, the broker's queue.
  auto per_service = [&](const char* name, const char* help, uint64_t (*get)(const ServiceView&)) {
    metrics::AddCallback(name, help, Type::kGauge, [shared, get] {
      std::lock_guard<std::mutex> lock(shared->mu);
      std::vector<Sample> out;
      for (const ServiceView& v : shared->snapshot.services) {
        out.push_back({{{"service", v.name}}, static_cast<double>(get(v))});
      }
      return out;
    });
  };
  per_service("imbus_broker_workers", "Live workers, by service.",
              [](const ServiceView& v) -> uint64_t { return v.workers; });
  per_service("imbus_broker_worker_outstanding", "Requests held by the workers, by service.",
              [](const ServiceView& v) { return v.outstanding; });
  per_service("imbus_broker_queue_depth",
              "Requests waiting in the broker for a worker, by service.",
              [](const ServiceView& v) { return v.queued; });
  metrics::AddCallback("imbus_broker_ha_state",
                       "1 for this broker's state (standalone, primary, backup, active, passive).",
                       Type::kGauge, [shared] {
                         std::lock_guard<std::mutex> lock(shared->mu);
                         return std::vector<Sample>{{{{"state", shared->snapshot.ha_state}}, 1.0}};
                       });
}

void BrokerMetrics::CountRequest(uint16_t service) {
  if (!on_) return;
  metrics::Counter& c = requests_[Slot(service)];
  if (!c.on()) {
    c = metrics::GetCounter("imbus_broker_requests_total",
                            "Requests from edges, by service (SYS/ROUTE included).",
                            {{"service", ServiceLabel(service, Slot(service) == kSlots - 1)}});
  }
  c.Inc();
}

void BrokerMetrics::ObserveReply(uint16_t service, double seconds) {
  if (!on_) return;
  metrics::Histogram& h = latency_[Slot(service)];
  if (!h.on()) {
    h = metrics::GetHistogram(
        "imbus_broker_dispatch_duration_seconds",
        "Requests sent to a worker: from the send to the worker's reply, by service.",
        {{"service", ServiceLabel(service, Slot(service) == kSlots - 1)}},
        metrics::LatencyBuckets());
  }
  h.Observe(seconds);
}

bool BrokerMetrics::Due(Clock::time_point now) {
  if (!on_ || now < next_publish_) return false;
  next_publish_ = now + kPublishEvery;
  return true;
}

void BrokerMetrics::Publish(Snapshot s) {
  if (!on_) return;
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->snapshot = std::move(s);
}

}  // namespace imbus::broker
