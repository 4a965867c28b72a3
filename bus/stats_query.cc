#include "bus/stats_query.h"

#include <algorithm>
#include <cstdio>

#include <zmq.hpp>

#include <fmt/ranges.h>

#include "bus/peer.h"

namespace imbus::bus {

namespace {

// Sends one `type` message with `meta` on a throwaway DEALER and waits for the
// broker's answer of the same type; its meta in *answer.
bool AskBroker(const std::string& endpoint, std::chrono::milliseconds timeout, codec::BusType type,
               const std::string& meta, std::string* answer, std::string* error,
               const CurveClientKeys* curve) {
  const char* what = type == codec::BusType::kStats ? "STATS" : "ADMIN";
  try {
    zmq::context_t ctx(1);
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    if (curve != nullptr) SetCurveClient(s, *curve);
    s.connect(endpoint);
    SendBus(s, {}, type, meta, {});
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    while (std::chrono::steady_clock::now() < deadline) {
      zmq::poll(&item, 1, std::chrono::milliseconds(100));
      if ((item.revents & ZMQ_POLLIN) == 0) continue;
      zmq::message_t type_part, meta_part;
      (void)s.recv(type_part);
      if (type_part.more()) (void)s.recv(meta_part);
      bool more = meta_part.more();
      while (more) {  // a body frame, if any, is not part of the answer
        zmq::message_t rest;
        (void)s.recv(rest);
        more = rest.more();
      }
      if (type_part.size() != 1) continue;
      const auto got = static_cast<codec::BusType>(type_part.data<char>()[0]);
      if (got == codec::BusType::kNotActive) {
        *error = endpoint + " is the passive broker of a pair";
        return false;
      }
      if (got == type) {
        *answer = meta_part.to_string();
        return true;
      }
    }
    *error = std::string("no ") + what + " answer from " + endpoint + " within " +
             std::to_string(timeout.count()) + " ms";
  } catch (const zmq::error_t& e) {
    *error = endpoint + ": " + e.what();
  }
  return false;
}

}  // namespace

bool QueryStats(const std::string& endpoint, std::chrono::milliseconds timeout,
                codec::StatsMeta* out, std::string* error, const CurveClientKeys* curve) {
  std::string answer;
  if (!AskBroker(endpoint, timeout, codec::BusType::kStats, codec::PackMeta(codec::Heartbeat{}),
                 &answer, error, curve)) {
    return false;
  }
  if (codec::UnpackMeta(answer, out)) return true;
  *error = "the broker's STATS answer could not be decoded";
  return false;
}

bool AdminCall(const std::string& endpoint, std::chrono::milliseconds timeout,
               const codec::AdminMeta& request, codec::AdminReplyMeta* out, std::string* error,
               const CurveClientKeys* curve) {
  std::string answer;
  if (!AskBroker(endpoint, timeout, codec::BusType::kAdmin, codec::PackMeta(request), &answer,
                 error, curve)) {
    return false;
  }
  if (codec::UnpackMeta(answer, out)) return true;
  *error = "the broker's ADMIN answer could not be decoded";
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
    const bool drained =
        std::find(stats.drained.begin(), stats.drained.end(), e.name) != stats.drained.end();
    out += "edge    " + e.name + "  " + e.host + ":" + std::to_string(e.port) + "  load " +
           std::to_string(e.load) + (drained ? "  DRAINED" : "") + "\n";
  }
  for (const auto& w : stats.workers) {
    out += "worker  " + w.id + "  " + fmt::format("{}", fmt::join(w.services, ",")) +
           "  outstanding " + std::to_string(w.outstanding) + "  served " +
           std::to_string(w.served) + "\n";
  }
  return out;
}

}  // namespace imbus::bus
