// Public (for tests and main). Broker: the ROUTER end of the internal bus. Registers
// edges and workers (READY), dispatches requests to the least-busy worker of their
// service, answers UNAVAILABLE when none appears or the worker dies or times out,
// keeps the session table that session actions on replies maintain, fans pushes out
// per edge thread, and answers SYS/ROUTE itself. Contract: docs/bus.md.
//
// Threads: one. The constructor binds the socket; Run() is the loop and must be
// called from one thread only (the socket belongs to it once it starts). In tests
// the broker runs in-process on tcp://127.0.0.1:* (czmq style):
//   zmq::context_t ctx;  Broker b(ctx, options);  std::atomic<bool> stop{false};
//   std::thread t([&] { b.Run(stop); });  ... connect DEALERs to b.endpoint() ...
//   stop = true; t.join();
// Not copyable or movable (owns the socket and the tables).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <zmq.hpp>

#include "broker/binary_star.h"
#include "broker/curve_authenticator.h"
#include "broker/route_table.h"
#include "broker/session_table.h"
#include "broker/user_limits.h"
#include "broker/worker_pool.h"
#include "net/log_limiter.h"
#include "codec/bus.h"

namespace imbus::broker {

class BrokerMetrics;

struct Options {
  std::string bind = "tcp://127.0.0.1:5555";
  int heartbeat_ms = 1000;
  int liveness = 3;  // a peer silent for liveness * heartbeat_ms is dead
  int queue_timeout_ms = 3000;
  int request_timeout_ms = 10000;
  size_t max_queued = 100000;
  // Overload (docs/bus.md "Overload"): a worker holds at most max_outstanding
  // requests (0: no bound); the rest wait in the broker's queue of their service,
  // which is bounded by time: once its oldest request has waited max_queue_wait_ms,
  // new requests are refused at once with RATE_LIMITED and retry_ms.
  uint32_t max_outstanding = 512;
  int max_queue_wait_ms = 500;
  // Per user, across all of the user's connections and edges (0 rate: off). The
  // defaults are far above what a person or the benchmarks do; they stop floods.
  UserLimitOptions user_limits;
  // CURVE (docs/bus.md "Security"): with a secret key the ROUTER is a CURVE server
  // that admits only the public keys in `curve_allow` (both Z85, already checked).
  // Empty: CURVE off, any peer may connect (local development).
  std::string curve_secret_key;
  std::vector<std::string> curve_allow;
  // With CURVE on: the public keys (Z85, also in curve_allow) whose ADMIN messages
  // (imbus-ctl) are served. With CURVE off any peer may administer.
  std::vector<std::string> curve_admin;
  // A primary/backup pair (Binary Star, docs/bus.md "A broker pair"). Empty ha_peer:
  // a standalone broker. Otherwise this broker publishes its state on ha_bind and
  // reads the other's from ha_peer, every heartbeat_ms; the other is gone after
  // ha_peer_timeout_ms (0: 2 × heartbeat_ms) of silence.
  std::string ha_peer;
  std::string ha_bind;
  bool ha_backup = false;
  int ha_peer_timeout_ms = 0;
  // How long a new broker (started, or just active in a pair) gives edges to re-bind
  // before it sends presence events, and after which users that edges report as
  // departed (closed while no broker heard) are told offline if no session of theirs
  // came back (0: liveness × heartbeat_ms).
  int departed_settle_ms = 0;
};

// What the broker counted since it started (loop thread only; tests read them
// after Run() returned).
struct Counters {
  uint64_t requests = 0;         // REQUESTs received from edges
  uint64_t replies = 0;          // REPLYs forwarded to edges
  uint64_t unavailable = 0;      // UNAVAILABLE answers the broker made
  uint64_t late_replies = 0;     // replies for requests already answered
  uint64_t dropped_replies = 0;  // replies whose edge is gone
  uint64_t pushes = 0;           // PUSH messages sent to edges
  uint64_t kicks = 0;
  uint64_t send_failures = 0;      // SendBus returned false (peer gone or full)
  uint64_t malformed = 0;          // messages that did not parse
  uint64_t queries = 0;            // session lookups answered to workers
  uint64_t session_events = 0;     // online/offline transitions sent to presence
  uint64_t rate_limited = 0;       // requests refused by the per-user request limit
  uint64_t rate_limited_send = 0;  // MSG/SEND refused by the per-user send limit
  uint64_t edge_readies = 0;       // READYs accepted from edge threads
  uint64_t worker_readies = 0;     // READYs accepted from workers
  uint64_t departed = 0;           // sessions edges reported closed while no broker heard
  uint64_t forced_offline = 0;     // users told offline from those reports
  uint64_t not_active = 0;         // messages a passive broker turned away
  uint64_t busy = 0;     // refused at once (RATE_LIMITED): the service's queue is full of wait
  uint64_t expired = 0;  // answered UNAVAILABLE undone: their deadline passed while queued
};

class Broker {
 public:
  // Binds the ROUTER socket; throws zmq::error_t when the endpoint is unusable.
  // Takes its metric handles now: start the metrics server (if any) first.
  Broker(zmq::context_t& ctx, Options options);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // The endpoint actually bound (the port resolved for tcp://host:* or :0).
  const std::string& endpoint() const { return endpoint_; }

  // Serves until `stop` becomes true (checked at least every 50 ms).
  void Run(const std::atomic<bool>& stop);
  // Serves for about `d` (tests that drive the broker from the same thread).
  void RunFor(std::chrono::milliseconds d);

  const Counters& counters() const { return counters_; }
  // Peers refused by CURVE (key not allowed, or a failed handshake); 0 when CURVE is off.
  uint64_t refused_peers() const { return auth_ ? auth_->refused() : 0; }
  // A random id drawn at start (never 0): peers announce themselves once per
  // incarnation, and edges tell from it which sessions a previous broker held.
  uint64_t incarnation() const { return incarnation_; }
  // "standalone", or the pair state: "primary", "backup", "active", "passive".
  const char* ha_state() const;

 private:
  using Clock = std::chrono::steady_clock;

  struct Peer {
    bool is_edge = false;
    std::string name;
    Clock::time_point last_heard;
    uint32_t features = 0;     // what it takes (codec::kFeature*), from its READY
    codec::BatchWriter batch;  // what goes to it at the end of this turn (kBatch)
  };

  void PollOnce(int timeout_ms);
  // The items of a kBatch from `identity`, each as if it had come on its own.
  void OnBatch(const std::string& identity, std::string_view items);
  // Sends every peer's batch of this turn (see Send).
  void FlushBatches();
  // Into `peer`'s batch of this turn; flushes it past 256 KiB.
  void AddToBatch(const std::string& identity, Peer& peer, codec::BusType type,
                  const std::string& meta, const std::string& body);
  void FlushBatch(const std::string& identity, Peer& peer);
  void RedispatchUnsent(const std::map<std::string, std::string>& unsent_by_worker);
  void OnMessage(const std::string& identity, codec::BusType type, const std::string& meta,
                 const std::string& body);
  void OnReady(const std::string& identity, const std::string& meta);
  void OnRequest(const std::string& edge, const std::string& meta, const std::string& body);
  void OnReply(const std::string& worker, const std::string& meta, const std::string& body);
  void OnPush(const std::string& meta, const std::string& body);
  void OnBind(const std::string& edge, const std::string& meta);
  void OnUnbind(const std::string& edge, const std::string& meta);
  void OnStats(const std::string& identity);
  // imbus-ctl (the end of broker.cc). `peer_key`: the sender's CURVE public key (Z85),
  // empty with CURVE off.
  void OnAdmin(const std::string& identity, const std::string& peer_key, const std::string& meta);
  void AdminKick(const std::string& user, codec::AdminReplyMeta* reply);
  void AdminBroadcast(const std::string& text, codec::AdminReplyMeta* reply);
  void AdminDrain(const std::string& edge, codec::AdminReplyMeta* reply);
  void OnQuery(const std::string& worker, const std::string& meta);
  void OnDeparted(const std::string& edge, const std::string& meta);
  // Users reported departed whose settle time passed: offline if no session of
  // theirs came back meanwhile.
  void SettleDeparted(Clock::time_point now);
  void SendSessionEvent(uint64_t uid, bool online);
  // How long a new broker gives edges to re-bind (liveness × heartbeat, or
  // departed_settle_ms): presence events wait that long after a start or a takeover.
  std::chrono::milliseconds RebindTime() const;
  // The first sign of a table being rebuilt (a carried-over BIND, a DEPARTED from a
  // previous broker): presence events wait RebindTime() from now.
  void StartRebuild();
  // Tells a presence worker about every user whose first session came or last one
  // went since the last call (internal PRESENCE/SESSION_EVENT requests).
  void EmitSessionEvents();
  // True when the per-user limits let `req` through; otherwise answers RATE_LIMITED.
  bool AdmitUser(const std::string& edge, const codec::RequestMeta& req);
  void AnswerRoute(const std::string& edge, const codec::RequestMeta& req);

  // Sends to the least-busy worker of `service` with room, or queues (behind the
  // requests of the service already queued). Answers at once when the request's
  // deadline has passed (UNAVAILABLE), when every worker is full and the queue has
  // been standing for max_queue_wait_ms (RATE_LIMITED), or when the queue is full.
  void Dispatch(const std::string& edge, const std::string& service, codec::RequestMeta req,
                const std::string& body, Clock::time_point queue_deadline);
  // Assigns a rid and sends to `worker`; another worker (or the queue) when it is gone.
  // `key`: the request's route key (0: none), for RequestMeta::owner.
  void SendToWorker(const std::string& worker, const std::string& edge, const std::string& service,
                    codec::RequestMeta req, const std::string& body, uint64_t key);
  // Hands queued requests of `services` to workers with room, oldest first.
  void DrainQueue(const std::vector<std::string>& services);
  // RATE_LIMITED with retry_ms: `service` is busy (`waited`: its queue's oldest wait).
  void AnswerBusy(const std::string& edge, const codec::RequestMeta& req,
                  const std::string& service, Clock::duration waited);
  // UNAVAILABLE for a request whose deadline passed before a worker took it.
  void AnswerExpired(const std::string& edge, const codec::RequestMeta& req);
  void AnswerError(const std::string& edge, const codec::RequestMeta& req, int code,
                   const std::string& error);
  void Kick(const SessionTable::Session& s, const std::string& reason);

  void OnTimer();
  // Hands the metrics a copy of the counters and the tables' sizes.
  void PublishMetrics();
  void SendHeartbeats();
  void ReapDeadPeers();
  void RemovePeer(const std::string& identity, const char* why);

  bool Send(const std::string& identity, codec::BusType type, const std::string& meta,
            const std::string& body = {});

  // The broker pair (the end of broker.cc). HaSetUp makes the state sockets; HaRead reads
  // the peer's states; HaTimer publishes ours; HaAdmit says whether a message from a
  // peer (edge or worker) is served, answering NOT_ACTIVE when it is not.
  void HaSetUp(zmq::context_t& ctx);
  void HaRead();
  void HaTimer(Clock::time_point now);
  bool HaAdmit(const std::string& identity, Clock::time_point now);
  void HaLogChange(const char* from);
  // A broker that stops being active forgets everything (no presence events): its
  // peers move to the other broker and re-bind there.
  void ForgetAll();

  Options options_;
  std::unique_ptr<CurveAuthenticator> auth_;  // CURVE on; made before socket_ binds
  zmq::socket_t socket_;
  std::string endpoint_;
  std::unordered_map<std::string, Peer> peers_;  // by bus identity
  std::vector<std::string> batched_;             // peers whose batch is not empty
  // Workers whose batch could not be sent this turn, with the items that were not:
  // dropped and handed on at the end of the turn (FlushBatches), never in the middle
  // of one, where a caller may be walking peers_ or holding one of its entries.
  std::map<std::string, std::string> unreachable_;
  RouteTable routes_;
  SessionTable sessions_;
  WorkerPool workers_;
  UserLimits user_limits_;
  Counters counters_;
  std::unique_ptr<BrokerMetrics> metrics_;
  Clock::time_point next_heartbeat_;
  uint64_t incarnation_ = 0;
  Clock::time_point events_from_{};  // presence events are held back until then
  bool rebuilding_ = false;          // StartRebuild ran since we became active
  net::LogLimiter timeout_log_{5, std::chrono::seconds(10)};
  // Departed users waiting for their settle time, in arrival order (the settle time
  // is fixed, so sorted by deadline).
  struct Departed {
    uint64_t uid;
    Clock::time_point settle_at;
  };
  std::deque<Departed> departed_;
  // Users this broker told offline from departed reports, and when: a re-bind of
  // theirs that claims to be carried over is news after all (they were told offline).
  std::unordered_map<uint64_t, Clock::time_point> forced_offline_;
  std::optional<BinaryStar> ha_;
  std::unique_ptr<zmq::socket_t> ha_pub_;
  std::unique_ptr<zmq::socket_t> ha_sub_;
  Clock::time_point next_ha_publish_;
  net::LogLimiter not_active_log_{1, std::chrono::seconds(5)};
  Clock::time_point next_busy_log_;
  Clock::time_point next_queue_scan_;
  uint64_t busy_logged_ = 0;  // counters_.busy at the last log line
};

}  // namespace imbus::broker
