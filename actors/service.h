// Public. The interface every actor service implements (auth, directory, ...), and
// the request/reply shapes the host hands it. A service instance belongs to one
// worker thread (with that thread's Db): no locking inside services.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "codec/body.h"
#include "codec/bus.h"
#include "codec/codes.h"
#include "codec/commands.h"

namespace imbus::actors {

struct Request {
  const codec::RequestMeta& meta;  // trusted: uid/device are set by the edge
  const codec::Body& body;         // parsed client map
};

// A push to send to users before the reply (docs/bus.md: pushes caused by a request
// go out before its reply). The host fills in skip_rid when asked.
struct Push {
  codec::PushMeta meta;
  std::string body;
  bool skip_requester = false;  // leave out the requesting connection
};

struct Reply;

// Work that would hold the worker thread for long (an Argon2id hash: 50-500 ms of
// CPU, during which its bus socket would send no heartbeat). A service that sets
// Reply::offload in Handle leaves the rest of the answer for later: the host runs
// `work` on its bounded OffloadPool while the worker goes on serving, then calls
// `then` on the worker thread with the same request and the reply as Handle left
// it; `then` finishes the reply (it may throw like Handle, and must not offload
// again). `work` runs on another thread: it may touch only what it captured (no Db,
// no Sessions, no service members). When the pool's queue is full the request is
// answered RATE_LIMITED and `then` never runs, so Handle must not have changed
// anything before offloading. Not from HandleBatch (see FinishInline).
struct Offload {
  std::function<void()> work;
  std::function<void(const Request&, Reply*)> then;
};

struct Reply {
  // OK body: the whole map including "code": 0 (see OkWriter). Empty means `{code: 0}`.
  std::string body;
  codec::SessionAction action = codec::SessionAction::kNone;
  codec::SessionInfo session;  // for kLogin
  uint64_t kick_uid = 0;
  std::string kick_reason;
  std::vector<Push> pushes;
  Offload offload;  // set: the answer is finished later (see Offload)
};

// Runs a reply's offloaded work and then its continuation on the calling thread;
// nothing when Handle offloaded nothing. For callers without an OffloadPool (logic
// tests, fuzzing, batches). Exceptions propagate as from Handle.
inline void FinishInline(const Request& req, Reply* reply) {
  if (!reply->offload.work) return;
  Offload offload = std::move(reply->offload);
  reply->offload = Offload{};
  offload.work();
  if (offload.then) offload.then(req, reply);
}

// Thrown by a service to answer with a protocol error code. The host also maps
// codec::BadField to BAD_REQUEST, DbUnavailable to UNAVAILABLE and anything else to
// INTERNAL; nothing escapes the worker loop.
class RequestError : public std::runtime_error {
 public:
  RequestError(codec::Code code, const std::string& what) : std::runtime_error(what), code_(code) {}
  codec::Code code() const { return code_; }

 private:
  codec::Code code_;
};

// Starts an OK body with `code: 0`; `fields` counts the other fields.
class OkWriter : public codec::MapWriter {
 public:
  explicit OkWriter(uint32_t fields) : codec::MapWriter(fields + 1) { Key("code").Int(0); }
};

// One request of a batch and its outcome (see Service::HandleBatch).
struct BatchItem {
  const Request* req;
  Reply reply;
  codec::Code code = codec::Code::kOk;  // not kOk: answered with this code and `error`
  std::string error;
};

// The command table's login gate (codec/commands.h needs_login): true when `meta`
// names a command that needs a login and carries no uid. The Dispatcher answers such
// a request UNAUTHENTICATED ("login required") before any service sees it, so
// services never check it again. (The edge refuses them first; this guards a
// misbehaving edge.)
inline bool LoginMissing(const codec::RequestMeta& meta) {
  const codec::CommandInfo* info = codec::FindCommand(meta.service, meta.command);
  return info != nullptr && info->needs_login && meta.uid == 0;
}
inline constexpr const char* kLoginRequired = "login required";

class Service {
 public:
  virtual ~Service() = default;
  // Answers one request of this service: calls the method registered for its
  // command (Handles); a command with none is answered UNSUPPORTED. A service may
  // override it instead. Called on the owning worker thread only.
  virtual void Handle(const Request& req, Reply* reply) {
    auto it = methods_.find(req.meta.command);
    if (it == methods_.end()) {
      const char* name = codec::ServiceName(req.meta.service);
      throw RequestError(codec::Code::kUnsupported, std::string(name ? name : "service") +
                                                        " has no command " +
                                                        std::to_string(req.meta.command));
    }
    it->second(req, reply);
  }

  // Batching, for commands whose cost is dominated by a commit (MSG/SEND): the host
  // takes every request already waiting on the socket (up to a bound), and hands the
  // consecutive ones with Batchable(command) to HandleBatch in arrival order, instead
  // of calling Handle one at a time. HandleBatch sets each item's reply, or its code
  // and error; an exception out of HandleBatch fails the whole batch (mapped as for
  // Handle). Replies and pushes go out in item order after HandleBatch returns.
  virtual bool Batchable(uint16_t /*command*/) const { return false; }

  // Pushes a service holds back to coalesce them (MSG's read receipts): the host
  // calls this on every turn of the worker loop, and at the latest when the time it
  // returned has passed. Appends the pushes due at `now_ms` (wall clock, ms) and
  // returns the ms until the next one is due, or -1 when none waits. May throw
  // (logged; the pushes are then dropped).
  virtual int64_t TakeDeferred(int64_t /*now_ms*/, std::vector<Push>* /*out*/) { return -1; }
  virtual void HandleBatch(std::vector<BatchItem>& items) {
    for (BatchItem& item : items) {
      Handle(*item.req, &item.reply);
      FinishInline(*item.req, &item.reply);
    }
  }

 protected:
  // The {command -> method} table: the constructor of a service registers each of
  // its commands once, e.g. Handles(codec::auth::kLogin, &AuthService::Login).
  template <class S>
  void Handles(uint16_t command, void (S::*method)(const Request&, Reply*)) {
    S* self = static_cast<S*>(this);
    methods_[command] = [self, method](const Request& req, Reply* reply) {
      (self->*method)(req, reply);
    };
  }

 private:
  std::unordered_map<uint16_t, std::function<void(const Request&, Reply*)>> methods_;
};

// Work of a service that is no answer to any request (push delivery): the host runs
// it once per process on a thread of its own, with no bus socket, until `stop`
// becomes true (it should look at least every second).
class BackgroundTask {
 public:
  virtual ~BackgroundTask() = default;
  virtual void Run(const std::atomic<bool>& stop) = 0;
};

// Settings services read at construction (flags of imbus-actor). Add fields here
// when a new service needs some.
struct ServiceOptions {
  uint64_t pwhash_ops = 0;  // 0: crypto_pwhash_OPSLIMIT_INTERACTIVE
  size_t pwhash_mem = 0;    // 0: crypto_pwhash_MEMLIMIT_INTERACTIVE
  int64_t token_ttl_s = 30 * 24 * 3600;
  // Failed password checks per account (AccountBackoff in actors/auth).
  uint32_t login_free_failures = 10;
  int64_t login_backoff_ms = 1000;  // 0: no per-account limit
  int64_t login_backoff_max_ms = 300000;
  // Issue 18: MSG/RECALL and MSG/EDIT windows; the legacy friendship model.
  int64_t recall_window_s = 120;
  int64_t edit_window_s = 24 * 3600;
  bool immediate_friends = false;  // ADD_FRIEND at once; PRESENCE about anyone
  // Push delivery (PushDelivery; docs/deploy.md "Offline push"). An empty URL: none.
  std::string push_url;
  std::string push_secret;  // HMAC-SHA256 key of the signature header; empty: unsigned
  uint32_t push_max_tries = 10;
  int64_t push_backoff_ms = 1000;
  int64_t push_backoff_max_ms = 600000;
  int64_t push_timeout_ms = 5000;  // one POST, connecting included
  int push_threads = 1;
  int64_t push_poll_ms = 500;  // how often an idle delivery thread looks for due rows
  uint32_t push_batch = 8;     // rows one thread claims at a time
  uint32_t push_preview_bytes = 200;
  // Files (the file service; docs/deploy.md "File storage").
  std::string file_dir = "./imbus-files";
  uint64_t file_max_size = 256ull << 20;
  uint64_t file_quota = 1ull << 30;  // per user; 0: none
  uint64_t file_chunk = 32768;
  int64_t file_upload_ttl_s = 86400;
};

}  // namespace imbus::actors
