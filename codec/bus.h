// Public. The internal bus protocol between edges, the broker and actor workers.
//
// Every bus message is a ZeroMQ multipart message sent by a DEALER peer:
//   [type: 1 byte] [meta: msgpack array of the struct for that type] [body]
// The ROUTER broker sees the peer identity prepended. `body` is present for
// kRequest, kReply and kPush only and carries the client's msgpack map verbatim,
// so the broker never re-encodes a client body. Pure: no sockets here.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <msgpack.hpp>

namespace imbus::codec {

enum class BusType : uint8_t {
  kReady = 1,        // peer -> broker: Ready
  kHeartbeat = 2,    // both ways: Heartbeat
  kRequest = 3,      // edge -> broker (rid 0) -> worker (rid set): RequestMeta + body
  kReply = 4,        // worker -> broker -> edge: ReplyMeta + body
  kPush = 5,         // worker -> broker: PushMeta + body; broker -> edge: EdgePushMeta + body
  kBind = 6,         // edge -> broker: BindMeta (re-announce a logged-in connection)
  kUnbind = 7,       // edge -> broker: UnbindMeta (a logged-in connection went away)
  kKick = 8,         // broker -> edge: KickMeta (send AUTH/KICKED, then close)
  kUnknownPeer = 9,  // broker -> peer: "I do not know you" (broker restarted): send Ready
  kStats = 10,       // any -> broker: empty meta; broker answers kStats with StatsMeta
  kQuery = 11,       // worker -> broker: QueryMeta; broker answers kQuery with QueryReplyMeta
  kDeparted = 12,   // edge -> broker: DepartedMeta (sessions that closed while the broker was away)
  kNotActive = 13,  // broker -> peer: "I am the passive broker of a pair": try the other one
  kBatch = 14,      // either way, between peers that both said kFeatureBatch: many messages
                    // in one (empty meta; the body holds the items, see BatchWriter)
  // Administration (imbus-ctl): any -> broker: AdminMeta; the broker answers kAdmin
  // with AdminReplyMeta. With CURVE on only admin keys are served (docs/bus.md).
  kAdmin = 15,
};

// What a peer can take, announced in Ready::features (peer -> broker) and in the
// Heartbeat that answers READY (broker -> peer). Nothing is sent in a form the other
// side did not announce, so old and new peers and brokers mix.
inline constexpr uint32_t kFeatureBatch = 1;  // understands kBatch

inline constexpr std::string_view kRoleEdge = "edge";
inline constexpr std::string_view kRoleWorker = "worker";

// Which announced peer may send each type to the broker (the arrows above, declared
// once; the broker counts anything else as malformed). READY, STATS and ADMIN come before
// or without an announcement and are not covered; the broker's own types (KICK,
// UNKNOWN_PEER, NOT_ACTIVE) may come from no peer.
inline constexpr bool MaySendToBroker(BusType type, bool from_edge) {
  switch (type) {
    case BusType::kHeartbeat:
      return true;
    case BusType::kRequest:
    case BusType::kBind:
    case BusType::kUnbind:
    case BusType::kDeparted:
      return from_edge;
    case BusType::kReply:
    case BusType::kPush:
    case BusType::kQuery:
      return !from_edge;
    default:
      return false;
  }
}

struct Ready {
  std::string role;                   // kRoleEdge or kRoleWorker
  std::string name;                   // edges: the edge's name (its threads share it)
  std::vector<std::string> services;  // workers: "auth", "directory", ...
  std::string host;                   // edges: public address clients should use
  uint16_t port = 0;
  uint32_t features = 0;  // kFeature* bits. Appended: old brokers ignore it.
  MSGPACK_DEFINE(role, name, services, host, port, features);
};

// Also the meta of kUnknownPeer and of the broker's answer to READY (a HEARTBEAT at
// once): the broker's incarnation tells a peer which broker it is talking to.
struct Heartbeat {
  uint32_t load = 0;  // edges: open client connections on this peer
  // broker -> peer: a random id the broker drew when it started (never 0). A peer
  // announces itself (READY) once per incarnation. Appended: old readers ignore it.
  uint64_t incarnation = 0;
  // broker -> peer, in the answer to READY: the kFeature* bits the broker takes from
  // this peer. Appended: old readers ignore it.
  uint32_t features = 0;
  MSGPACK_DEFINE(load, incarnation, features);
};

// A logged-in client connection as the broker's session table holds it.
struct SessionInfo {
  uint64_t uid = 0;
  std::string device;
  std::string name;
  std::string public_host;  // as the edge observed the client
  uint16_t public_port = 0;
  std::string local_host;  // as the client declared (optional)
  uint16_t p2p_port = 0;   // as the client declared at LOGIN (0: none)
  MSGPACK_DEFINE(uid, device, name, public_host, public_port, local_host, p2p_port);
};

struct RequestMeta {
  uint64_t rid = 0;   // set by the broker; echoed by the worker
  uint64_t conn = 0;  // the edge's connection id
  uint32_t seq = 0;
  uint16_t service = 0;
  uint16_t command = 0;
  uint64_t uid = 0;  // 0 before login
  std::string device;
  std::string peer_host;  // client address as the edge observed it
  uint16_t peer_port = 0;
  // When the asker stops waiting: wall-clock milliseconds since the Unix epoch (0:
  // no deadline, as from an edge older than this field). Absolute wall time, not a
  // remaining budget: a budget would have to be re-based at every hop, and the time
  // a request sits in a socket queue (where overload piles it up) would never be
  // charged to it; steady clocks cannot be compared across hosts. The cost is that
  // clock skew between hosts shifts the cutoff by as much (keep them NTP-synced).
  // The broker refuses to dispatch a request past it and actors drop it unhandled.
  // Appended last: older readers of the array ignore it.
  int64_t deadline_ms = 0;
  // Set by the broker on a request it routed by key (MSG/SEND: the conversation) to
  // the worker that also got the key's previous request: nothing else was sent that
  // key in between, so what the worker remembers of it (its last seq) is current.
  // False: read it from the database. Appended last, like deadline_ms.
  bool owner = false;
  MSGPACK_DEFINE(rid, conn, seq, service, command, uid, device, peer_host, peer_port, deadline_ms,
                 owner);
};

// What a reply does to the connection's session, applied by the broker (session
// table) and the edge (connection state) as the reply passes.
enum class SessionAction : uint8_t {
  kNone = 0,
  kLogin = 1,   // bind `session` to the connection; kick (uid, device) elsewhere
  kLogout = 2,  // unbind the connection
};

struct ReplyMeta {
  uint64_t rid = 0;
  uint64_t conn = 0;
  uint32_t seq = 0;
  uint16_t service = 0;
  uint16_t command = 0;
  uint8_t action = 0;     // SessionAction
  SessionInfo session;    // for kLogin
  uint64_t kick_uid = 0;  // kick every session of this user (other than this conn)
  std::string kick_reason;
  // Set by the broker on a RATE_LIMITED answer for a busy service (docs/bus.md
  // "Overload"): for this many ms the edge answers that service's new requests
  // itself, with this same body, instead of forwarding what the broker would refuse.
  // 0: no such hint. Appended last: older readers of the array ignore it.
  uint32_t busy_ms = 0;
  MSGPACK_DEFINE(rid, conn, seq, service, command, action, session, kick_uid, kick_reason, busy_ms);
};

// The reply header that answers `req` (rid, conn, seq, service and command echoed;
// no session action).
inline ReplyMeta ReplyMetaFor(const RequestMeta& req) {
  ReplyMeta r;
  r.rid = req.rid;
  r.conn = req.conn;
  r.seq = req.seq;
  r.service = req.service;
  r.command = req.command;
  return r;
}

// worker -> broker: deliver `body` as a push to every session of `uids`, except the
// connection (skip_conn on the edge that sent the request with rid skip_rid).
struct PushMeta {
  std::vector<uint64_t> uids;
  uint16_t service = 0;
  uint16_t command = 0;
  uint64_t skip_rid = 0;
  MSGPACK_DEFINE(uids, service, command, skip_rid);
};

// broker -> edge: one message per edge, listing that edge's target connections.
struct EdgePushMeta {
  std::vector<uint64_t> conns;
  uint16_t service = 0;
  uint16_t command = 0;
  MSGPACK_DEFINE(conns, service, command);
};

struct BindMeta {
  uint64_t conn = 0;
  SessionInfo session;
  // The broker incarnation the edge announced itself to before this one (0: none).
  // A broker whose own incarnation differs knows the session is carried over from a
  // previous broker (friends were told it is online then): binding it is no news.
  uint64_t bound_at = 0;
  MSGPACK_DEFINE(conn, session, bound_at);
};

// edge -> broker, right after the re-binds: logged-in connections that closed while
// the broker the edge was announced to (`bound_at`) may not have seen their UNBIND
// (it died or was unreachable). The broker makes sure friends hear these users went
// offline (docs/bus.md "Restarts and failover").
struct DepartedMeta {
  struct Session {
    uint64_t conn = 0;
    uint64_t uid = 0;
    MSGPACK_DEFINE(conn, uid);
  };
  uint64_t bound_at = 0;
  std::vector<Session> sessions;
  MSGPACK_DEFINE(bound_at, sessions);
};

struct UnbindMeta {
  uint64_t conn = 0;
  MSGPACK_DEFINE(conn);
};

struct KickMeta {
  uint64_t conn = 0;
  std::string reason;
  MSGPACK_DEFINE(conn, reason);
};

struct StatsMeta {
  struct Edge {
    std::string name;
    std::string host;
    uint16_t port = 0;
    uint32_t load = 0;
    MSGPACK_DEFINE(name, host, port, load);
  };
  struct Worker {
    std::string id;
    std::vector<std::string> services;
    uint32_t outstanding = 0;
    uint64_t served = 0;
    MSGPACK_DEFINE(id, services, outstanding, served);
  };
  std::vector<Edge> edges;
  std::vector<Worker> workers;
  uint64_t sessions = 0;
  uint64_t requests = 0;
  uint64_t unavailable = 0;
  // Refused by the broker's per-user limits (RATE_LIMITED): any request, MSG/SEND.
  // Appended last: older readers of the array ignore them.
  uint64_t rate_limited = 0;
  uint64_t rate_limited_send = 0;
  uint64_t refused_peers = 0;  // peers CURVE turned away (0 when CURVE is off)
  // Restarts and failover (docs/bus.md): this broker's incarnation, READYs accepted
  // from edge threads and from workers since it started, presence events it sent,
  // and its place in a pair ("standalone", "primary", "backup", "active", "passive").
  uint64_t incarnation = 0;
  uint64_t edge_readies = 0;
  uint64_t worker_readies = 0;
  uint64_t session_events = 0;
  std::string ha_state;
  // Edges drained by imbus-ctl (names): SYS/ROUTE hands them out no more.
  std::vector<std::string> drained;
  MSGPACK_DEFINE(edges, workers, sessions, requests, unavailable, rate_limited, rate_limited_send,
                 refused_peers, incarnation, edge_readies, worker_readies, session_events, ha_state,
                 drained);
};

// imbus-ctl -> broker. `command`: "kick" (arg: a uid or a user name), "broadcast"
// (arg: the text), "drain" / "undrain" (arg: an edge name).
struct AdminMeta {
  std::string command;
  std::string arg;
  MSGPACK_DEFINE(command, arg);
};

// broker -> imbus-ctl: code 0 or a codec::Code, with `error`; `count`: the sessions
// kicked, the sessions the broadcast went to, the sessions told to reconnect.
struct AdminReplyMeta {
  int code = 0;
  std::string error;
  uint64_t count = 0;
  MSGPACK_DEFINE(code, error, count);
};

// worker -> broker: the live sessions of `uids`, read from the session table (the
// one truth about who is online; workers keep no copy of it).
struct QueryMeta {
  uint64_t qid = 0;  // echoed in the answer
  std::vector<uint64_t> uids;
  MSGPACK_DEFINE(qid, uids);
};

struct UserSessions {
  uint64_t uid = 0;
  std::vector<SessionInfo> sessions;  // empty: offline
  MSGPACK_DEFINE(uid, sessions);
};

struct QueryReplyMeta {
  uint64_t qid = 0;
  std::vector<UserSessions> users;  // same order as the query's uids
  MSGPACK_DEFINE(qid, users);
};

// The body of a kBatch: items back to back, each
//   [type: 1 byte] [meta length: u32 LE] [meta] [body length: u32 LE] [body]
// i.e. what would otherwise have been that many bus messages, in order. One ZeroMQ
// message instead of many: the per-message cost (a wakeup, a pipe, frames) is paid
// once for all the replies and pushes of an actor's batch, or for all that the broker
// has for one edge after one turn of its loop.
class BatchWriter {
 public:
  void Add(BusType type, std::string_view meta, std::string_view body) {
    out_.push_back(static_cast<char>(type));
    Length(meta.size());
    out_.append(meta);
    Length(body.size());
    out_.append(body);
    ++count_;
  }
  size_t count() const { return count_; }
  size_t bytes() const { return out_.size(); }
  bool empty() const { return count_ == 0; }
  const std::string& data() const { return out_; }
  void Clear() {
    out_.clear();
    count_ = 0;
  }

 private:
  void Length(size_t n) {
    const auto v = static_cast<uint32_t>(n);
    const char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 24)};
    out_.append(b, 4);
  }
  std::string out_;
  size_t count_ = 0;
};

// Reads the items of a kBatch body. Next() is false at the end, and also at the first
// malformed item (lengths past the end, a nested batch): then ok() is false and the
// rest is ignored. Views point into `data`, which must outlive them.
class BatchReader {
 public:
  explicit BatchReader(std::string_view data) : rest_(data) {}
  bool Next(BusType* type, std::string_view* meta, std::string_view* body) {
    if (rest_.empty() || !ok_) return false;
    if (rest_.size() < 1 + 4 || static_cast<BusType>(rest_[0]) == BusType::kBatch) return Fail();
    *type = static_cast<BusType>(rest_[0]);
    rest_.remove_prefix(1);
    return Take(meta) && Take(body);
  }
  bool ok() const { return ok_; }

 private:
  bool Take(std::string_view* out) {
    if (rest_.size() < 4) return Fail();
    const auto* p = reinterpret_cast<const unsigned char*>(rest_.data());
    const size_t n = static_cast<size_t>(p[0]) | static_cast<size_t>(p[1]) << 8 |
                     static_cast<size_t>(p[2]) << 16 | static_cast<size_t>(p[3]) << 24;
    rest_.remove_prefix(4);
    if (n > rest_.size()) return Fail();
    *out = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return true;
  }
  bool Fail() {
    ok_ = false;
    return false;
  }
  std::string_view rest_;
  bool ok_ = true;
};

template <class T>
std::string PackMeta(const T& meta) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, meta);
  return std::string(buf.data(), buf.size());
}

// Unpacks bus meta with limits; false (never throws) if it is not a T.
template <class T>
bool UnpackMeta(std::string_view bytes, T* out) noexcept {
  try {
    size_t offset = 0;
    msgpack::object_handle oh =
        msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr,
                        msgpack::unpack_limit(1u << 20, 1024, 1u << 20, 1u << 20, 0, 8));
    oh.get().convert(*out);
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace imbus::codec
