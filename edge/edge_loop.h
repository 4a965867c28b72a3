// Internal to edge/. EdgeLoop: one edge thread. An edge-triggered epoll loop over its
// own listening socket, its client connections and its own BusPeer (the ZMQ_FD of
// the DEALER socket sits in the same epoll set). Nothing is shared with other
// threads except the stop flag and the stats counters.
//
// Construct, run and destroy it on its thread: the BusPeer is made in the
// constructor and belongs to that thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <zmq.hpp>

#include "bus/peer.h"
#include "codec/body.h"
#include "codec/frame.h"
#include "edge/connection.h"
#include "edge/edge_stats.h"
#include "edge/ip_limits.h"
#include "edge/listener.h"
#include "edge/options.h"
#include "edge/request_tracker.h"
#include "edge/tls_context.h"
#include "net/unique_fd.h"

namespace imbus::edge {

class EdgeLoop {
 public:
  // `options` has name and advertise address resolved; `ip_limits` is shared with
  // the other loops and outlives this one. Throws on epoll failure.
  EdgeLoop(int index, const EdgeOptions& options, Listener listener, zmq::context_t& ctx,
           EdgeStats* stats, IpLimits* ip_limits);
  ~EdgeLoop();
  EdgeLoop(const EdgeLoop&) = delete;
  EdgeLoop& operator=(const EdgeLoop&) = delete;

  // Also accepts TLS clients on `listener`, with sessions from `tls` (which must
  // outlive the loop). Call before Run. Throws on epoll failure.
  void AddTlsListener(Listener listener, const TlsContext* tls);

  // Runs until `stop` is set (checked at least every 100 ms), then closes every
  // connection (unbinding the logged-in ones).
  void Run(const std::atomic<bool>& stop);

 private:
  // epoll user data for the two non-connection fds; connection ids count from 1.
  static constexpr uint64_t kListenerTag = ~uint64_t{0};
  static constexpr uint64_t kBusTag = ~uint64_t{0} - 1;
  static constexpr uint64_t kTlsListenerTag = ~uint64_t{0} - 2;

  // Client side.
  void OnAccept(Listener& listener, bool tls, Clock::time_point now);
  void OnConnectionEvent(Connection& c, uint32_t events, Clock::time_point now);
  // TLS connections: handshake, then output and input on every event (edge_loop_tls.cc).
  void OnTlsEvent(Connection& c, Clock::time_point now);
  void ReadInput(Connection& c, Clock::time_point now);
  void HandleFrame(Connection& c, const codec::Frame& frame, Clock::time_point now);
  // True when the request went to the broker (else it was answered here).
  bool Forward(Connection& c, const codec::Frame& frame, Clock::time_point now);
  // Encodes a frame into scratch_ and queues it on `c`; closes `c` on failure.
  void WriteFrame(Connection& c, uint16_t flags, uint16_t service, uint16_t command, uint32_t seq,
                  std::string_view body);
  void WriteEncoded(Connection& c, std::string_view bytes);
  // The fatal SYS/ERROR before a close: seq 0 and no RESPONSE flag, so no client
  // takes it for the answer to a request it sent to SYS 1/65535 (that one gets an
  // ordinary UNSUPPORTED response).
  void WriteSysError(Connection& c, std::string_view body);
  void Respond(Connection& c, const codec::Header& request, std::string_view body);
  // Ends the stream politely: the output drains, then the write side is shut down.
  void CloseAfterFlush(Connection& c, std::string_view reason);
  void FinishIfFlushed(Connection& c, Clock::time_point now);
  // Closes now; unbinds a logged-in connection. The object lives until the end of
  // the loop iteration, so references held by callers stay valid.
  void Close(Connection& c, std::string_view reason);
  Connection* Find(uint64_t conn);
  void SweepIdle(Clock::time_point now);

  // Rate limits (edge_loop_limits.cc). Each Admit* answers RATE_LIMITED itself and
  // returns false when the request must go no further.
  bool AdmitConnectionRate(Connection& c, const codec::Header& h, Clock::time_point now);
  bool AdmitLogin(Connection& c, const codec::Header& h, Clock::time_point now);
  void NoteLoginForwarded(const Connection& c, const codec::Header& h, const codec::Body& body);
  // A reply passing by: the outcome of a LOGIN/RESUME feeds the address's backoff.
  void NoteLoginReply(uint64_t conn, uint32_t seq, std::string_view body);
  void ForgetLogin(uint64_t conn, uint32_t seq);
  // Counts a new connection against its address; refuses it (RATE_LIMITED SYS/ERROR,
  // then a polite close) when the address is at its cap.
  bool AdmitAddress(Connection& c, Clock::time_point now);

  // Bus side.
  void SyncBusFd();
  void DrainBus();
  // Writes the output queued for clients during a bus burst; true if a connection
  // had to be closed (which may have sent on the bus).
  bool FlushQueued();
  void OnBusMessage(bus::BusMessage& m);
  void OnReply(bus::BusMessage& m);
  void OnPush(bus::BusMessage& m);
  void OnKick(bus::BusMessage& m);
  // READY went out: re-bind every logged-in connection behind it, then report the
  // ones that closed while the previous broker may have missed their UNBIND.
  void OnBusConnected(uint64_t bound_at);
  // The broker holding our requests is gone: answer them all UNAVAILABLE now.
  void OnBrokerLost();
  void AnswerUnavailable(const RequestTracker::Request& r, std::string_view why);
  void SendUnbind(uint64_t conn);
  // Forgets departed_ entries the broker has surely seen (it spoke after them).
  void PruneDeparted();

  std::string log_name_;  // "edge-x/0"
  const EdgeOptions& options_;
  EdgeStats* stats_;
  Listener listener_;
  std::optional<Listener> tls_listener_;
  const TlsContext* tls_ = nullptr;  // owned by EdgeServer
  net::UniqueFd epoll_;
  std::unique_ptr<bus::BusPeer> peer_;
  int bus_fd_ = -1;
  uint64_t next_conn_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> conns_;
  std::vector<std::unique_ptr<Connection>> graveyard_;  // closed this iteration
  bool corked_ = false;             // client output is queued, not written (a bus burst)
  std::vector<uint64_t> to_flush_;  // connections with queued output, in order
  RequestTracker tracker_;
  // Logged-in connections closed recently, kept until the broker has surely read
  // their UNBIND: if it dies first, the next one hears of them (DEPARTED) and tells
  // the users' friends they went offline (docs/bus.md "Restarts and failover").
  struct Departed {
    uint64_t conn;
    uint64_t uid;
    Clock::time_point at;
  };
  std::deque<Departed> departed_;
  std::string scratch_;  // one encoded frame at a time
  Clock::time_point next_sweep_;
  IpLimits* ip_limits_;
  // LOGIN/RESUME forwarded and not yet answered, by (conn, seq): the address, so
  // the answer counts even when the connection closed meanwhile. Bounded by the
  // request deadline (entries go with the reply or the timeout).
  // (conn, seq) of a forwarded LOGIN/RESUME/DELETE_ACCOUNT: the address and the
  // account it names ("u:<uid>", "n:<name>", "" for RESUME).
  struct PendingLogin {
    std::string ip;
    std::string target;
  };
  std::map<std::pair<uint64_t, uint32_t>, PendingLogin> pending_logins_;
  // Refusals over the per-address cap are logged at most once a second per loop.
  Clock::time_point next_refusal_log_{};
  uint64_t refusals_unlogged_ = 0;
};

}  // namespace imbus::edge
