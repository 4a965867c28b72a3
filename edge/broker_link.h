// Internal to edge/. BrokerLink: an edge loop's side of the bus. It owns the loop's
// BusPeer (a DEALER to the broker), keeps the peer's ZMQ_FD in the loop's epoll set
// across reconnects, decodes what the broker sends (REPLY, PUSH, KICK) and hands it
// to its Handler, and keeps the broker's view of the loop's sessions in step: BIND
// after every READY, UNBIND on close, and the recently departed sessions re-announced
// (DEPARTED) until a broker has surely read their UNBIND.
//
// Made, used and destroyed on its loop's thread (the BusPeer belongs to it).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include <zmq.hpp>

#include "bus/peer.h"
#include "codec/bus.h"
#include "edge/options.h"

namespace imbus::edge {

class BrokerLink {
 public:
  using Clock = std::chrono::steady_clock;

  // What the loop does with the broker's messages. Called from Drain and Tick.
  class Handler {
   public:
    virtual ~Handler() = default;
    // A burst of bus messages is read between BeginBurst and EndBurst; frames for
    // clients may be queued meanwhile. EndBurst writes them and returns true when
    // that sent on the bus (a closed connection's UNBIND): the link then reads again.
    virtual void BeginBurst() = 0;
    virtual bool EndBurst() = 0;
    virtual void OnReply(codec::ReplyMeta& meta, std::string_view body) = 0;
    virtual void OnPush(const codec::EdgePushMeta& meta, std::string_view body) = 0;
    virtual void OnKick(const codec::KickMeta& meta) = 0;
    // READY went out: call Bind for every logged-in connection; returns how many.
    virtual size_t RebindSessions(uint64_t bound_at) = 0;
    // The broker holding our requests is gone.
    virtual void OnBrokerLost() = 0;
    // A request given to SendRequest could not be sent after all (its batch could not
    // be queued): answer it UNAVAILABLE, as SendRequest's false would have.
    virtual void OnUnsent(const codec::RequestMeta& request) = 0;
  };

  // Connects to options.broker as `log_name` and adds the peer's fd to `epoll_fd`
  // with user data `epoll_tag`. `options` and `handler` outlive the link.
  BrokerLink(std::string log_name, const EdgeOptions& options, zmq::context_t& ctx, int epoll_fd,
             uint64_t epoll_tag, Handler* handler);
  ~BrokerLink();
  BrokerLink(const BrokerLink&) = delete;
  BrokerLink& operator=(const BrokerLink&) = delete;

  bool broker_alive() const { return peer_->broker_alive(); }
  // A client request to the broker; false when the peer's queue is full. When the
  // broker takes batches, the requests of one loop iteration go as one bus message,
  // sent by Tick and Drain (see docs/bus.md "Batches").
  bool SendRequest(const codec::RequestMeta& meta, std::string_view body);
  // From RebindSessions only.
  void Bind(uint64_t conn, const codec::SessionInfo& session, uint64_t bound_at);
  // A logged-in connection closed: UNBIND, and remembered as departed.
  void Depart(uint64_t conn, uint64_t uid);
  // Undoes a binding without a departure (the broker bound a connection already gone).
  void Unbind(uint64_t conn);

  // Heartbeats and reconnects (`load`: open connections), then the fd re-registered
  // if it changed. Call every loop iteration before Drain.
  void Tick(uint32_t load);
  // Reads until the peer is empty, handing every message to the Handler. Last in a
  // loop iteration: a send may have consumed the ZMQ_FD edge.
  void Drain();
  // Forgets departed sessions the broker has surely seen (it spoke after them).
  void PruneDeparted();

 private:
  void SyncFd();
  // Sends the requests batched so far; any that could not go get OnUnsent.
  void FlushRequests();
  void Dispatch(bus::BusMessage& m);
  void OnConnected(uint64_t bound_at);

  std::string log_name_;
  const EdgeOptions& options_;
  int epoll_fd_;
  uint64_t epoll_tag_;
  Handler* handler_;
  std::unique_ptr<bus::BusPeer> peer_;
  int fd_ = -1;
  std::vector<codec::RequestMeta> batched_;  // the requests queued (without their bodies)
  // Logged-in connections closed recently, kept until the broker has surely read
  // their UNBIND: if it dies first, the next one hears of them (DEPARTED) and tells
  // the users' friends they went offline (docs/bus.md "Restarts and failover").
  struct Departed {
    uint64_t conn;
    uint64_t uid;
    Clock::time_point at;
  };
  std::deque<Departed> departed_;
};

}  // namespace imbus::edge
