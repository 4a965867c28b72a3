#include "bus/stats_query.h"

#include <cstdio>

#include <zmq.hpp>

#include <fmt/ranges.h>

#include "bus/peer.h"

namespace imbus::bus {

bool QueryStats(const std::string& endpoint, std::chrono::milliseconds timeout,
                codec::StatsMeta* out, std::string* error, const CurveClientKeys* curve) {
  try {
    zmq::context_t ctx(1);
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    if (curve != nullptr) SetCurveClient(s, *curve);
    s.connect(endpoint);
    SendBus(s, {}, codec::BusType::kStats, codec::PackMeta(codec::Heartbeat{}), {});
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    while (std::chrono::steady_clock::now() < deadline) {
      zmq::poll(&item, 1, std::chrono::milliseconds(100));
      if ((item.revents & ZMQ_POLLIN) == 0) continue;
      zmq::message_t type, meta;
      (void)s.recv(type);
      if (type.more()) (void)s.recv(meta);
      bool more = meta.more();
      while (more) {  // a body frame, if any, is not part of STATS
        zmq::message_t rest;
        (void)s.recv(rest);
        more = rest.more();
      }
      if (type.size() == 1 && type.data<char>()[0] == static_cast<char>(codec::BusType::kStats)) {
        if (codec::UnpackMeta(meta.to_string_view(), out)) return true;
        *error = "the broker's STATS answer could not be decoded";
        return false;
      }
    }
    *error =
        "no STATS answer from " + endpoint + " within " + std::to_string(timeout.count()) + " ms";
  } catch (const zmq::error_t& e) {
    *error = endpoint + ": " + e.what();
  }
  return false;
}

std::string FormatStats(const codec::StatsMeta& stats) {
  std::string out = "sessions " + std::to_string(stats.sessions) + "  requests " +
                    std::to_string(stats.requests) + "  unavailable " +
                    std::to_string(stats.unavailable) + "  rate_limited " +
                    std::to_string(stats.rate_limited) + "  rate_limited_send " +
                    std::to_string(stats.rate_limited_send) + "  refused_peers " +
                    std::to_string(stats.refused_peers) + "\n";
  char incarnation[17];
  std::snprintf(incarnation, sizeof(incarnation), "%016llx",
                static_cast<unsigned long long>(stats.incarnation));
  out += "broker  " + (stats.ha_state.empty() ? std::string("standalone") : stats.ha_state) +
         "  incarnation " + incarnation + "  edge_readies " + std::to_string(stats.edge_readies) +
         "  worker_readies " + std::to_string(stats.worker_readies) + "  session_events " +
         std::to_string(stats.session_events) + "\n";
  for (const auto& e : stats.edges) {
    out += "edge    " + e.name + "  " + e.host + ":" + std::to_string(e.port) + "  load " +
           std::to_string(e.load) + "\n";
  }
  for (const auto& w : stats.workers) {
    out += "worker  " + w.id + "  " + fmt::format("{}", fmt::join(w.services, ",")) +
           "  outstanding " + std::to_string(w.outstanding) + "  served " +
           std::to_string(w.served) + "\n";
  }
  return out;
}

}  // namespace imbus::bus
