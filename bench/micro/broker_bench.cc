// One hop through the real broker in-process: a DEALER "edge" sends REQUESTs over
// tcp://127.0.0.1, the broker dispatches them to a DEALER "worker" thread that
// echoes each as a REPLY, and the broker forwards the reply back to the edge.
// Arg = requests kept in flight (1: round-trip latency; 64: throughput).
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "broker/broker.h"
#include "bus/peer.h"
#include "codec/body.h"
#include "codec/bus.h"
#include "codec/commands.h"

namespace {

using imbus::codec::BusType;
using Clock = std::chrono::steady_clock;

// Reads one bus message (after the DEALER's empty-free framing: type, meta, body).
bool RecvBus(zmq::socket_t& s, BusType* type, std::string* meta, std::string* body,
             int timeout_ms) {
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) <= 0) return false;
  std::vector<zmq::message_t> parts;
  for (;;) {
    zmq::message_t m;
    if (!s.recv(m, zmq::recv_flags::dontwait)) break;
    const bool more = m.more();
    parts.push_back(std::move(m));
    if (!more) break;
  }
  if (parts.empty() || parts[0].size() != 1) return false;
  *type = static_cast<BusType>(parts[0].data<uint8_t>()[0]);
  *meta = parts.size() > 1 ? parts[1].to_string() : std::string();
  *body = parts.size() > 2 ? parts[2].to_string() : std::string();
  return true;
}

void SendReady(zmq::socket_t& s, bool edge) {
  imbus::codec::Ready r;
  r.role = std::string(edge ? imbus::codec::kRoleEdge : imbus::codec::kRoleWorker);
  r.name = edge ? "bench-edge" : "bench-worker";
  if (!edge) r.services = {"auth"};
  r.host = "127.0.0.1";
  r.port = 1;
  imbus::bus::SendBus(s, {}, BusType::kReady, imbus::codec::PackMeta(r), {});
}

void WorkerLoop(zmq::context_t& ctx, const std::string& endpoint, const std::atomic<bool>& stop) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.connect(endpoint);
  SendReady(s, false);
  const std::string hb = imbus::codec::PackMeta(imbus::codec::Heartbeat{});
  auto next_hb = Clock::now();
  BusType type;
  std::string meta, body;
  while (!stop) {
    if (Clock::now() >= next_hb) {
      imbus::bus::SendBus(s, {}, BusType::kHeartbeat, hb, {});
      next_hb = Clock::now() + std::chrono::milliseconds(300);
    }
    if (!RecvBus(s, &type, &meta, &body, 50)) continue;
    if (type == BusType::kUnknownPeer) SendReady(s, false);
    if (type != BusType::kRequest) continue;
    imbus::codec::RequestMeta req;
    if (!imbus::codec::UnpackMeta(meta, &req)) continue;
    const imbus::codec::ReplyMeta rep = imbus::codec::ReplyMetaFor(req);
    imbus::bus::SendBus(s, {}, BusType::kReply, imbus::codec::PackMeta(rep),
                        imbus::codec::OkBody());
  }
}

void BM_BrokerHop(benchmark::State& state) {
  const int window = static_cast<int>(state.range(0));
  spdlog::set_level(spdlog::level::warn);  // the broker logs every peer joining
  zmq::context_t ctx;
  imbus::broker::Options options;
  options.bind = "tcp://127.0.0.1:*";
  imbus::broker::Broker broker(ctx, options);
  std::atomic<bool> stop{false};
  std::thread broker_thread([&] { broker.Run(stop); });
  std::thread worker_thread([&] { WorkerLoop(ctx, broker.endpoint(), stop); });

  zmq::socket_t edge(ctx, zmq::socket_type::dealer);
  edge.set(zmq::sockopt::linger, 0);
  edge.connect(broker.endpoint());
  SendReady(edge, true);
  const std::string hb = imbus::codec::PackMeta(imbus::codec::Heartbeat{});
  auto next_hb = Clock::now();
  const std::string body = imbus::codec::EmptyBody();
  uint32_t seq = 0;
  auto send_one = [&] {
    imbus::codec::RequestMeta req;
    req.conn = 1;
    req.seq = ++seq;
    req.service = imbus::codec::ToWire(imbus::codec::Service::kAuth);
    req.command = imbus::codec::auth::kLogout;
    imbus::bus::SendBus(edge, {}, BusType::kRequest, imbus::codec::PackMeta(req), body);
  };
  BusType type;
  std::string meta, reply_body;
  // Waits for one REPLY; false after 5 s without one.
  auto recv_reply = [&] {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline) {
      if (Clock::now() >= next_hb) {
        imbus::bus::SendBus(edge, {}, BusType::kHeartbeat, hb, {});
        next_hb = Clock::now() + std::chrono::milliseconds(300);
      }
      if (!RecvBus(edge, &type, &meta, &reply_body, 100)) continue;
      if (type == BusType::kReply) return true;
      if (type == BusType::kUnknownPeer) SendReady(edge, true);
    }
    return false;
  };
  // Warm up: the first request waits in the broker's queue until the worker is READY.
  send_one();
  if (!recv_reply()) state.SkipWithError("no reply through the broker");
  int in_flight = 0;
  for (auto _ : state) {
    while (in_flight < window) {
      send_one();
      ++in_flight;
    }
    if (!recv_reply()) {
      state.SkipWithError("reply lost");
      break;
    }
    --in_flight;
  }
  while (in_flight > 0 && recv_reply()) --in_flight;
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  stop = true;
  worker_thread.join();
  broker_thread.join();
}
BENCHMARK(BM_BrokerHop)->Arg(1)->Arg(64)->UseRealTime();

}  // namespace
