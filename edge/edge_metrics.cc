#include "edge/edge_metrics.h"

#include <string>

#include "codec/codes.h"
#include "codec/commands.h"

namespace imbus::edge {
namespace {

std::string ServiceLabel(uint16_t service) {
  const char* name = codec::ServiceName(service);
  return name != nullptr ? name : "unknown";
}

// "SEND" for MSG/SEND; "unknown" outside the protocol's table.
std::string CommandLabel(uint16_t service, uint16_t command) {
  const codec::CommandInfo* info = codec::FindCommand(service, command);
  if (info == nullptr) return "unknown";
  const std::string_view name = info->name;
  const size_t slash = name.find('/');
  return std::string(slash == std::string_view::npos ? name : name.substr(slash + 1));
}

using metrics::Sample;
using metrics::Type;

void Add(const char* name, const char* help, Type type, const std::function<EdgeCounters()>& read,
         uint64_t EdgeCounters::*field) {
  metrics::AddCallback(name, help, type, [read, field] {
    return std::vector<Sample>{{{}, static_cast<double>(read().*field)}};
  });
}

}  // namespace

void ExportEdgeCounters(std::function<EdgeCounters()> read) {
  if (!metrics::Enabled()) return;
  metrics::AddCallback(
      "imbus_edge_connections", "Client connections open now, by transport.", Type::kGauge, [read] {
        const EdgeCounters c = read();
        std::vector<Sample> out;
        for (int t = 0; t < 4; ++t) {
          out.push_back(
              {{{"transport", kTransportNames[t]}}, static_cast<double>(c.open_by_transport[t])});
        }
        return out;
      });
  metrics::AddCallback("imbus_edge_connections_accepted_total",
                       "Client connections accepted, by transport.", Type::kCounter, [read] {
                         const EdgeCounters c = read();
                         std::vector<Sample> out;
                         for (int t = 0; t < 4; ++t) {
                           out.push_back({{{"transport", kTransportNames[t]}},
                                          static_cast<double>(c.accepted_by_transport[t])});
                         }
                         return out;
                       });
  metrics::AddCallback(
      "imbus_edge_connections_closed_total",
      "Client connections closed, by reason (idle, slow_reader, broken_stream, kicked, other).",
      Type::kCounter, [read] {
        const EdgeCounters c = read();
        const uint64_t named = c.closed_idle + c.closed_slow_reader + c.closed_broken + c.kicked;
        return std::vector<Sample>{
            {{{"reason", "idle"}}, static_cast<double>(c.closed_idle)},
            {{{"reason", "slow_reader"}}, static_cast<double>(c.closed_slow_reader)},
            {{{"reason", "broken_stream"}}, static_cast<double>(c.closed_broken)},
            {{{"reason", "kicked"}}, static_cast<double>(c.kicked)},
            {{{"reason", "other"}}, static_cast<double>(c.closed > named ? c.closed - named : 0)},
        };
      });
  Add("imbus_edge_frames_received_total", "Whole frames received from clients.", Type::kCounter,
      read, &EdgeCounters::requests);
  Add("imbus_edge_frames_sent_total", "Frames written to clients (responses and pushes).",
      Type::kCounter, read, &EdgeCounters::frames_out);
  Add("imbus_edge_received_bytes_total", "Bytes read from clients (after TLS).", Type::kCounter,
      read, &EdgeCounters::bytes_in);
  Add("imbus_edge_sent_bytes_total",
      "Bytes queued to clients (before TLS; WebSocket framing and HTTP included).", Type::kCounter,
      read, &EdgeCounters::bytes_out);
  Add("imbus_edge_forwarded_total", "Requests forwarded to the broker.", Type::kCounter, read,
      &EdgeCounters::forwarded);
  Add("imbus_edge_request_timeouts_total",
      "Forwarded requests answered UNAVAILABLE at their deadline.", Type::kCounter, read,
      &EdgeCounters::timeouts);
  Add("imbus_edge_pushes_total", "Push frames written to clients.", Type::kCounter, read,
      &EdgeCounters::pushes);
  Add("imbus_edge_peak_output_bytes", "Most output ever pending on one connection.", Type::kGauge,
      read, &EdgeCounters::peak_output);
  metrics::AddCallback(
      "imbus_edge_rate_limited_total",
      "Requests and connections refused by the edge's limits, by limit (conn_rate, "
      "conn_send_rate, login_backoff, conns_per_ip, service_busy).",
      Type::kCounter, [read] {
        const EdgeCounters c = read();
        return std::vector<Sample>{
            {{{"limit", "conn_rate"}}, static_cast<double>(c.rate_limited)},
            {{{"limit", "conn_send_rate"}}, static_cast<double>(c.rate_limited_send)},
            {{{"limit", "login_backoff"}}, static_cast<double>(c.login_backoff)},
            {{{"limit", "conns_per_ip"}}, static_cast<double>(c.refused_ip_cap)},
            {{{"limit", "service_busy"}}, static_cast<double>(c.busy)},
        };
      });
}

int PeekCode(std::string_view body) {
  // fixmap or map 16, then the fixstr "code", then a positive fixint.
  size_t i = 0;
  if (body.empty()) return -1;
  const auto b0 = static_cast<unsigned char>(body[0]);
  if (b0 >= 0x80 && b0 <= 0x8f) {
    i = 1;
  } else if (b0 == 0xde) {
    i = 3;
  } else {
    return -1;
  }
  if (body.size() < i + 6 || body.substr(i, 5) !=
                                 "\xa4"
                                 "code") {
    return -1;
  }
  const auto v = static_cast<unsigned char>(body[i + 5]);
  return v <= 0x7f ? v : -1;
}

RequestMetrics::RequestMetrics() : on_(metrics::Enabled()) {
  if (!on_) return;
  responses_.resize(size_t{kSlots} * kSlots * kCodes);
  latency_.resize(kSlots);
}

void RequestMetrics::CountResponse(uint16_t service, uint16_t command, std::string_view body) {
  if (!on_) return;
  const int code = PeekCode(body);
  const int code_slot = code >= 0 && code < kCodes - 1 ? code : kCodes - 1;
  metrics::Counter& c =
      responses_[(static_cast<size_t>(Slot(service)) * kSlots + Slot(command)) * kCodes +
                 code_slot];
  if (!c.on()) {
    c = metrics::GetCounter(
        "imbus_edge_responses_total", "Responses written to clients, by service, command and code.",
        {{"service", Slot(service) == kSlots - 1 ? "unknown" : ServiceLabel(service)},
         {"command", Slot(service) == kSlots - 1 || Slot(command) == kSlots - 1
                         ? "unknown"
                         : CommandLabel(service, command)},
         {"code", code_slot == kCodes - 1 ? "UNKNOWN" : codec::CodeName(code_slot)}});
  }
  c.Inc();
}

void RequestMetrics::ObserveLatency(uint16_t service, double seconds) {
  if (!on_) return;
  metrics::Histogram& h = latency_[Slot(service)];
  if (!h.on()) {
    h = metrics::GetHistogram(
        "imbus_edge_request_duration_seconds",
        "Forwarded requests: arrival at the edge to the reply, by service.",
        {{"service", Slot(service) == kSlots - 1 ? "unknown" : ServiceLabel(service)}},
        metrics::LatencyBuckets());
  }
  h.Observe(seconds);
}

}  // namespace imbus::edge
