// Internal to edge/. EdgeLoop: one edge thread. An edge-triggered epoll loop over its
// own listening sockets (plain and TLS), its client connections and its BrokerLink
// (the ZMQ_FD of its DEALER socket sits in the same epoll set). What it lets in is
// decided by its Admission. Nothing is shared with other threads except the stop
// flag, the stats counters and the per-address limits.
//
// Construct, run and destroy it on its thread: the BrokerLink is made in the
// constructor and belongs to that thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <zmq.hpp>

#include "codec/body.h"
#include "codec/frame.h"
#include "edge/admission.h"
#include "edge/broker_link.h"
#include "edge/close_reason.h"
#include "edge/connection.h"
#include "edge/edge_metrics.h"
#include "edge/edge_stats.h"
#include "edge/http.h"
#include "edge/ip_limits.h"
#include "edge/listener.h"
#include "edge/options.h"
#include "edge/request_tracker.h"
#include "edge/tls_context.h"
#include "net/unique_fd.h"

namespace imbus::edge {

class EdgeLoop : private BrokerLink::Handler {
 public:
  // `options` has name and advertise address resolved; `ip_limits` is shared with
  // the other loops and outlives this one. Throws on epoll failure.
  EdgeLoop(int index, const EdgeOptions& options, Listener listener, zmq::context_t& ctx,
           EdgeStats* stats, IpLimits* ip_limits, FileBudget* file_budget = nullptr);
  ~EdgeLoop() override;
  EdgeLoop(const EdgeLoop&) = delete;
  EdgeLoop& operator=(const EdgeLoop&) = delete;

  // Also accepts TLS clients on `listener`, with sessions from `tls` (which must
  // outlive the loop). Call before Run. Throws on epoll failure.
  void AddTlsListener(Listener listener, const TlsContext* tls);
  // Also accepts browsers: HTTP (the web app from `web`, may be null) and WebSocket
  // upgrades on `ws` (plain) and `wss` (TLS with sessions from `tls`); either may be
  // absent. Call before Run. Throws on epoll failure.
  void AddWsListeners(std::optional<Listener> ws, std::optional<Listener> wss,
                      const TlsContext* tls, const StaticFiles* web);

  // Runs until `stop` is set (checked at least every 100 ms), then closes every
  // connection (unbinding the logged-in ones).
  void Run(const std::atomic<bool>& stop);

 private:
  // epoll user data for the non-connection fds; connection ids count from 1.
  static constexpr uint64_t kListenerTag = ~uint64_t{0};
  static constexpr uint64_t kBusTag = ~uint64_t{0} - 1;
  static constexpr uint64_t kTlsListenerTag = ~uint64_t{0} - 2;
  static constexpr uint64_t kWsListenerTag = ~uint64_t{0} - 3;
  static constexpr uint64_t kWssListenerTag = ~uint64_t{0} - 4;

  // Client side.
  void AddListener(const Listener& listener, uint64_t tag, const char* what);
  // `http`: the connection starts with HTTP (a WebSocket listener).
  void OnAccept(Listener& listener, bool tls, bool http, Clock::time_point now);
  void OnConnectionEvent(Connection& c, uint32_t events, Clock::time_point now);
  // TLS connections: handshake, then output and input on every event.
  void OnTlsEvent(Connection& c, Clock::time_point now);
  // Reads until the socket has no more (EAGAIN). With `short_read_drains`, a read
  // that fills less than the buffer ends it too: the socket had no more at that
  // moment, and with EPOLLET anything arriving after brings a new event. Only for
  // a plain socket whose event carried no hang-up (a FIN that came with the data
  // brings no event of its own), which saves a read per request that would return
  // EAGAIN.
  void ReadInput(Connection& c, Clock::time_point now, bool short_read_drains = false);
  // Received bytes of a connection still speaking frames (the plain and TLS ports).
  void OnFrameInput(Connection& c, const char* data, size_t n, Clock::time_point now);
  // Browsers (edge_loop_ws.cc): HTTP requests until an upgrade, then WebSocket
  // messages, each exactly one frame for HandleFrame.
  void OnHttpInput(Connection& c, const char* data, size_t n, Clock::time_point now);
  void HandleHttpRequest(Connection& c, const HttpRequest& r, Clock::time_point now);
  void OnWsInput(Connection& c, const char* data, size_t n, Clock::time_point now);
  // Writes bytes as they are (HTTP, or frames already wrapped for a WebSocket).
  void WriteRaw(Connection& c, std::string_view bytes);
  // A WebSocket ending for `reason`: its close frame goes out (best effort when the
  // socket closes at once).
  void SendWsClose(Connection& c, CloseReason reason, std::string_view detail);
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
  // A refused request: RATE_LIMITED with the verdict's wait and reason.
  void RespondRefused(Connection& c, const codec::Header& request, const Verdict& v);
  // Ends the stream politely: the output drains, then the write side is shut down.
  void CloseAfterFlush(Connection& c, CloseReason reason, std::string_view detail = {});
  void FinishIfFlushed(Connection& c);
  // Closes now; unbinds a logged-in connection. The object lives until the end of
  // the loop iteration, so references held by callers stay valid.
  void Close(Connection& c, CloseReason reason, std::string_view detail = {});
  Connection* Find(uint64_t conn);
  void SweepIdle(Clock::time_point now);
  // The request will get no reply from the broker: UNAVAILABLE now.
  void AnswerUnavailable(const RequestTracker::Request& r, std::string_view why);

  // BrokerLink::Handler.
  void BeginBurst() override { corked_ = true; }
  // Writes the output queued for clients during a bus burst; true if a connection
  // had to be closed (which may have sent on the bus).
  bool EndBurst() override;
  void OnReply(codec::ReplyMeta& meta, std::string_view body) override;
  void OnPush(const codec::EdgePushMeta& meta, std::string_view body) override;
  void OnKick(const codec::KickMeta& meta) override;
  size_t RebindSessions(uint64_t bound_at) override;
  // The broker holding our requests is gone: answer them all UNAVAILABLE now.
  void OnBrokerLost() override;
  void OnUnsent(const codec::RequestMeta& request) override;

  std::string log_name_;  // "edge-x/0"
  const EdgeOptions& options_;
  EdgeStats* stats_;
  Listener listener_;
  std::optional<Listener> tls_listener_;
  const TlsContext* tls_ = nullptr;  // owned by EdgeServer
  net::UniqueFd epoll_;
  std::unique_ptr<BrokerLink> link_;
  Admission admission_;
  uint64_t next_conn_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> conns_;
  std::vector<std::unique_ptr<Connection>> graveyard_;  // closed this iteration
  bool corked_ = false;             // client output is queued, not written (a bus burst)
  std::vector<uint64_t> to_flush_;  // connections with queued output, in order
  RequestTracker tracker_;
  // Services the broker said are busy (ReplyMeta::busy_ms): until when, and the
  // RATE_LIMITED body it answered, which the edge gives their requests meanwhile.
  struct Busy {
    Clock::time_point until;
    std::string body;
  };
  std::unordered_map<uint16_t, Busy> busy_;
  RequestMetrics request_metrics_;
  std::string scratch_;  // one encoded frame at a time
  std::string ws_out_;   // scratch_ wrapped in a WebSocket frame
  std::optional<Listener> ws_listener_;
  std::optional<Listener> wss_listener_;
  const StaticFiles* web_ = nullptr;  // owned by EdgeServer; null: no web app
  Clock::time_point next_sweep_;
};

}  // namespace imbus::edge
